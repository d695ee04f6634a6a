"""wfsample: a tiny CPU-variant package used to test wheelfarm end to end.

The compiled extension ``wfsample._kernels`` holds one kernel per ISA path that was enabled when the
wheel was built; ``isa()`` lists them.
"""

from ._kernels import dot, dot_bf16, dot_u8s8, isa, usable

__all__ = ["dot", "dot_bf16", "dot_u8s8", "isa", "usable"]

#!/usr/bin/env python3
"""Generates the benchmark inputs: a large x86-64 shared object assembled from real AVX2, AVX-512,
VNNI, BF16 and AMX instructions, and a ~250 MB wheel with ~2,000 members that contains it.

usage: gen_fixtures.py OUT_DIR [SO_MB] [WHEEL_MB]
"""
import base64, hashlib, os, random, subprocess, sys, zipfile

out = sys.argv[1]
so_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
wheel_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 250
os.makedirs(out, exist_ok=True)

# One block of code: a realistic mix, most of it baseline/AVX2, some AVX-512 and a little VNNI/BF16/AMX.
block = """
    mov rax, [rdi+8]
    add rax, rsi
    lea rcx, [rax+rdx*4]
    vpaddd ymm0, ymm1, ymm2
    vfmadd231ps ymm3, ymm4, ymm5
    vmovdqu ymm6, [rdi]
    vaddps zmm0, zmm1, zmm2
    vmulps zmm3, zmm4, [rsi]
    vpdpbusd zmm5, zmm6, zmm7
    vdpbf16ps zmm8, zmm9, zmm10
    tdpbf16ps tmm0, tmm1, tmm2
    cmp rcx, rax
    jne 1f
    xor eax, eax
1:  nop
"""
reps = so_mb * 1024 * 1024 // 70  # ~70 bytes of code per block
asm = f"""
    .intel_syntax noprefix
    .text
    .globl big_kernel
    .type big_kernel, @function
big_kernel:
    .rept {reps}
{block}
    .endr
    ret
"""
src = os.path.join(out, "big.s")
so = os.path.join(out, "big.so")
open(src, "w").write(asm)
subprocess.run(["gcc", "-shared", "-fPIC", "-nostdlib", src, "-o", so], check=True)
os.remove(src)

# The wheel: the object as the compiled extension, ~1,000 Python sources, ~1,000 binary data files.
name, version = "wfbench_cpu", "1.0.0"
di = f"{name}-{version}.dist-info"
rows = []
path = os.path.join(out, f"{name}-{version}-cp312-cp312-manylinux_2_28_x86_64.whl")
rng = random.Random(42)
so_bytes = open(so, "rb").read()
words = [w for w in "def return import class self value tensor kernel cache batch token model layer weight".split()]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    def add(n, data):
        z.writestr(n, data)
        rows.append(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}")
    add("wfbench/__init__.py", b"__version__ = '1.0.0'\n")
    add("wfbench/_C.abi3.so", so_bytes)
    compressed_so = z.infolist()[-1].compress_size
    for i in range(1000):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(50, 600)))
        add(f"wfbench/py/mod_{i:04d}.py", text.encode())
    budget = wheel_mb * 1024 * 1024 - compressed_so - 3 * 1024 * 1024
    per = max(1, budget // 996)
    for i in range(996):
        add(f"wfbench/data/blob_{i:04d}.bin", os.urandom(per))
    readme = "# wfbench\n\nBenchmark package.\n"
    add(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: wfbench-cpu\nVersion: {version}\nDescription-Content-Type: text/markdown\n\n{readme}".encode())
    add(f"{di}/WHEEL", b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\nTag: cp312-cp312-manylinux_2_28_x86_64\n\n")
    rows.append(f"{di}/RECORD,,")
    z.writestr(f"{di}/RECORD", "\n".join(rows) + "\n")
print(path)
print(so)

"""Runs a source's PEP 517 prepare_metadata_for_build_wheel and prints what it found as JSON.

Usage: pep517_metadata.py SOURCE OUTDIR
No compile: a backend without the hook is reported, never replaced by a full build. Uses the
pyproject_hooks that pip vendors, in the build venv (no isolation: the venv holds the build
requirements). Prints {"name", "version", "requires_python", "requires_dist", "metadata_dir"}.
"""
import email.parser, json, os, sys

try:
    from pyproject_hooks import BuildBackendHookCaller, HookMissing
except ImportError:
    from pip._vendor.pyproject_hooks import BuildBackendHookCaller, HookMissing

src, out = sys.argv[1], sys.argv[2]
backend, backend_path = "setuptools.build_meta:__legacy__", None
py = os.path.join(src, "pyproject.toml")
if os.path.exists(py):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    text = open(py, encoding="utf-8").read()
    try:
        import tomllib
        bs = tomllib.loads(text).get("build-system", {})
        backend = bs.get("build-backend", backend)
        backend_path = bs.get("backend-path")
    except ImportError:
        import re
        m = re.search(r"build-backend\s*=\s*[\"']([^\"']+)", text)
        backend = m.group(1) if m else backend
os.makedirs(out, exist_ok=True)
caller = BuildBackendHookCaller(src, backend, backend_path=backend_path, runner=lambda cmd, cwd=None, extra_environ=None:
                                __import__("subprocess").check_call(cmd, cwd=cwd, env={**os.environ, **(extra_environ or {})},
                                                                     stdout=sys.stderr))
settings = {}
for kv in os.environ.get("WF_CONFIG_SETTINGS_JSON", "").split("\x1f"):
    if "=" in kv:
        k, v = kv.split("=", 1)
        settings[k] = v
try:
    name = caller.prepare_metadata_for_build_wheel(out, config_settings=settings or None, _allow_fallback=False)
except HookMissing:
    sys.exit(f"pep517_metadata: the backend {backend} has no prepare_metadata_for_build_wheel hook")
meta = email.parser.Parser().parse(open(os.path.join(out, name, "METADATA"), encoding="utf-8"))
print(json.dumps({
    "name": meta.get("Name"),
    "version": meta.get("Version"),
    "requires_python": meta.get("Requires-Python"),
    "requires_dist": meta.get_all("Requires-Dist") or [],
    "metadata_dir": name,
}))

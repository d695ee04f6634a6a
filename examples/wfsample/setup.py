"""Build script of wfsample, mirroring how vLLM's cmake/cpu_extension.cmake picks CPU ISA paths.

Environment (as vLLM reads its VLLM_CPU_* variables):
  WFSAMPLE_CPU_DISABLE_AVX512  AVX-512 is turned off only when this is the string "true" (like
                               VLLM_CPU_DISABLE_AVX512: "1" does nothing).
  WFSAMPLE_CPU_AVX512VNNI      enables VNNI when set to a CMake-true value; VNNI is ALSO enabled when
                               the build host's /proc/cpuinfo has avx512_vnni (the env cannot turn it off).
  WFSAMPLE_CPU_AVX512BF16      likewise for avx512_bf16.
  WFSAMPLE_CPU_AMXBF16         likewise for amx_bf16 (-mamx-tile -mamx-bf16).
  AVX-512 itself (and so VNNI/BF16/AMX, which are nested in it as in vLLM) is enabled when the build
  host's /proc/cpuinfo has avx512f, unless disabled as above.
  WFSAMPLE_DIST_NAME           distribution name (default "wfsample"); the import package is always wfsample.
  WFSAMPLE_VERSION             version (default "0.0.0").
  WFSAMPLE_TARGET_ARCH         target machine (default: platform.machine()); aarch64 builds the NEON
                               path. When it differs from the interpreter's machine, this is a cross
                               build: CC/LDSHARED must name a cross compiler.
  WFSAMPLE_EXTRA_CFLAGS        extra compiler flags appended to the computed ones.
  WFSAMPLE_ABI3                when CMake-true, builds against CPython's stable ABI (3.11 and later), as
                               vLLM does: one cp311-abi3 wheel serves every Python from 3.11 on.
  MAX_JOBS                     parallel compile jobs, as vLLM reads it.
"""

import os
import platform
import shlex
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CMAKE_FALSE = {"", "0", "off", "no", "false", "n", "ignore", "notfound"}


def cmake_true(name):
    """CMake's if(<value>) truthiness, which vLLM's cpu_extension.cmake applies to its env flags."""
    value = os.environ.get(name, "").strip().lower()
    return value not in CMAKE_FALSE and not value.endswith("-notfound")


def cpuinfo_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def normalise_arch(name):
    name = name.lower()
    return {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64"}.get(name, name)


def log(message):
    print("wfsample: " + message, file=sys.stderr, flush=True)


TARGET = normalise_arch(os.environ.get("WFSAMPLE_TARGET_ARCH") or platform.machine())
BUILD_MACHINE = normalise_arch(platform.machine())
HOST_FLAGS = cpuinfo_flags()

sources = ["csrc/module.c", "csrc/scalar.c"]
cflags = ["-O2", "-std=c11", "-Werror=implicit-function-declaration"]
paths = []

if TARGET == "x86_64":
    paths.append("avx2")
    sources.append("csrc/avx2.c")
    cflags += ["-mavx2", "-mfma"]
    avx512_disabled = os.environ.get("WFSAMPLE_CPU_DISABLE_AVX512") == "true"
    if "avx512f" in HOST_FLAGS and not avx512_disabled:
        paths.append("avx512")
        sources.append("csrc/avx512.c")
        cflags += ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq"]
        for path, flag, env, mflags in [
            ("avx512vnni", "avx512_vnni", "WFSAMPLE_CPU_AVX512VNNI", ["-mavx512vnni"]),
            ("avx512bf16", "avx512_bf16", "WFSAMPLE_CPU_AVX512BF16", ["-mavx512bf16"]),
            ("amxbf16", "amx_bf16", "WFSAMPLE_CPU_AMXBF16", ["-mamx-tile", "-mamx-bf16"]),
        ]:
            if flag in HOST_FLAGS or cmake_true(env):
                why = "build host has " + flag if flag in HOST_FLAGS else env + " is set"
                log("enabling %s (%s)" % (path, why))
                paths.append(path)
                sources.append("csrc/%s.c" % path)
                cflags += mflags
            else:
                log("%s disabled: no %s in the build host's /proc/cpuinfo and %s not set" % (path, flag, env))
    elif avx512_disabled:
        log("avx512 disabled by WFSAMPLE_CPU_DISABLE_AVX512=true")
    else:
        log("avx512 disabled: no avx512f in the build host's /proc/cpuinfo")
elif TARGET == "aarch64":
    paths.append("neon")
    sources.append("csrc/neon.c")
else:
    log("no SIMD path for target '%s': scalar only" % TARGET)

cflags += shlex.split(os.environ.get("WFSAMPLE_EXTRA_CFLAGS", ""))
macros = [("WFSAMPLE_HAVE_" + p.upper(), "1") for p in paths]
ABI3 = cmake_true("WFSAMPLE_ABI3")
if ABI3:
    macros.append(("Py_LIMITED_API", "0x030B0000"))
    log("stable ABI: cp311-abi3")
log("target %s, ISA paths: %s, flags: %s" % (TARGET, " ".join(paths) or "none", " ".join(cflags)))


class BuildExt(build_ext):
    """Honours MAX_JOBS and names/configures the extension for the target machine on cross builds."""

    def finalize_options(self):
        super().finalize_options()
        if os.environ.get("MAX_JOBS", "").isdigit():
            self.parallel = int(os.environ["MAX_JOBS"])

    def get_ext_filename(self, fullname):
        name = super().get_ext_filename(fullname)
        if TARGET != BUILD_MACHINE:
            name = name.replace("-%s-" % BUILD_MACHINE, "-%s-" % TARGET)
        return name

    def build_extensions(self):
        if TARGET != BUILD_MACHINE:
            self._cross_pyconfig()
        super().build_extensions()

    def _cross_pyconfig(self):
        # Debian's pyconfig.h includes <TRIPLET/pythonX.Y/pyconfig.h> for the compiler's target, which a
        # cross build lacks unless the target's python dev package is installed. Both are LP64 Linux, so
        # the build machine's configuration serves the extension's needs.
        version = "python%d.%d" % sys.version_info[:2]
        include = sysconfig.get_paths()["include"]
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        host_cfg = os.path.join(os.path.dirname(include), multiarch, version, "pyconfig.h")
        target_cfg = os.path.join(os.path.dirname(include), "%s-linux-gnu" % TARGET, version, "pyconfig.h")
        if multiarch and os.path.exists(host_cfg) and not os.path.exists(target_cfg):
            shim = os.path.join(os.path.abspath(self.build_temp), "cross-include")
            path = os.path.join(shim, "%s-linux-gnu" % TARGET, version)
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "pyconfig.h"), "w") as f:
                f.write('#include "%s"\n' % host_cfg)
            self.compiler.add_include_dir(shim)
            log("cross build: using %s for %s" % (host_cfg, TARGET))


setup(
    name=os.environ.get("WFSAMPLE_DIST_NAME", "wfsample"),
    version=os.environ.get("WFSAMPLE_VERSION", "0.0.0"),
    description="A tiny CPU-variant package for testing wheelfarm",
    long_description=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    package_dir={"": "src"},
    packages=["wfsample"],
    ext_modules=[
        Extension(
            "wfsample._kernels",
            sources=sources,
            include_dirs=["csrc"],
            define_macros=macros,
            extra_compile_args=cflags,
            py_limited_api=ABI3,
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}} if ABI3 else {},
    cmdclass={"build_ext": BuildExt},
    zip_safe=False,
)

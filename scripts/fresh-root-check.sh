#!/usr/bin/env bash
# The fresh-root check: proves that scripts/setup.sh installs everything on a NEW Debian 12
# machine, which a CI machine that already has the packages cannot show.
#
#   scripts/fresh-root-check.sh [--keep]
#
# 1. A Debian 12 (bookworm) minbase root is made with debootstrap once per machine and cached
#    outside the clone ($WHEELFARM_FRESH_ROOT_CACHE, default /var/cache/wheelfarm-fresh-root);
#    the mirror is the one this machine's apt uses.
# 2. Every run works on a fresh copy of it: the clone's files (tracked and untracked, not ignored)
#    are copied in, with what the root needs to reach the same registries this machine reaches
#    (CA certificates, pip and apt configuration, resolv.conf; PIP_*, SSL_* and proxy variables
#    are kept). The Swift toolchain, installed outside Debian, is bind-mounted read-only.
# 3. Inside it, with chroot: scripts/setup.sh, then the self-check (scripts/doctor.sh --tests).
#    A package missing from setup.sh's list fails here, naming what is missing.
#
# --keep leaves the copy in place for a look (its path is printed). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
keep=no
for arg in "$@"; do
  case $arg in
    --keep) keep=yes ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "fresh-root-check: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "fresh-root-check: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }

started=$(date +%s)
say() { echo "fresh-root-check: $*"; }
cache=${WHEELFARM_FRESH_ROOT_CACHE:-/var/cache/wheelfarm-fresh-root}
suite=bookworm
base=$cache/$suite-minbase
mkdir -p "$cache"

# The mirror this machine's apt uses for bookworm (deb822 .sources first, then one-line lists).
mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*\<bookworm\>/ && /Types:[^\n]*\<deb\>/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo http://deb.debian.org/debian
}

# 1. The cached minbase root (made once; a lock keeps two runs from making it at once).
exec 9>"$cache/lock"
flock 9
if [ ! -f "$base/.wheelfarm-complete" ]; then
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  url=$(mirror)
  say "making a Debian 12 minbase root from $url (once per machine; cached in $base)"
  rm -rf "$base.partial" "$base"
  if ! debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
       "$suite" "$base.partial" "$url" > "$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    say "debootstrap failed (its log: $cache/debootstrap.log)" >&2
    exit 1
  fi
  mv "$base.partial" "$base"
  touch "$base/.wheelfarm-complete"
fi
flock -u 9

# 2. A fresh copy, the clone and the machine's registry access.
root=$(mktemp -d /var/tmp/wheelfarm-fresh-root.XXXXXX)
mounts=()
cleanup() {
  local i
  for (( i = ${#mounts[@]} - 1; i >= 0; i-- )); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [ "$keep" = yes ]; then say "kept the root at $root"; else rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
cp -a "$base/." "$root/"
rm -f "$root/.wheelfarm-complete"

mkdir -p "$root/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Deleted but not yet committed files are listed by ls-files: only what exists is copied.
  # shellcheck disable=SC2016
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    (cd "$repo" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
    tar -C "$repo" --null -T - -cf - | tar -C "$root/src" -xf -
else
  tar -C "$repo" --exclude='./.build*' --exclude=./.venv --exclude=./dist -cf - . | tar -C "$root/src" -xf -
fi

copy_in() {  # copy_in PATH...: files or folders of this machine to the same place in the root
  local p
  for p in "$@"; do
    [ -e "$p" ] || continue
    mkdir -p "$root$(dirname "$p")"
    cp -a "$p" "$root$(dirname "$p")/"
  done
}
copy_in /etc/ssl/certs /usr/local/share/ca-certificates /etc/pip.conf /etc/resolv.conf /etc/hosts
[ -d "$HOME/.config/pip" ] && { mkdir -p "$root/root/.config"; cp -a "$HOME/.config/pip" "$root/root/.config/"; }
# apt reaches the mirror as this machine does: its enabled sources and its apt.conf.d settings.
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && grep -q bookworm "$f" && copy_in "$f"
done
for f in /etc/apt/apt.conf.d/*; do [ -f "$root$f" ] || copy_in "$f"; done

mount_in() {  # mount_in TYPE SOURCE TARGET [OPTIONS]
  mkdir -p "$root$3"
  if [ "$1" = bind ]; then mount --bind "$2" "$root$3"; else mount -t "$1" "$2" "$root$3"; fi
  mounts+=("$root$3")
  [ -z "${4:-}" ] || mount -o "remount,bind,$4" "$root$3"
}
# The root is a mount point of its own, as / is on a real machine (unshare --propagation, which
# the test farm uses, needs that).
mount --bind "$root" "$root"
mounts+=("$root")
mount_in proc proc /proc
mount_in sysfs sysfs /sys
mount_in bind /dev /dev
mount_in devpts devpts /dev/pts
mount_in tmpfs tmpfs /run
# The Swift toolchain (…/usr/bin/swiftc), unless Debian's own /usr holds it.
swift_path=''
if swiftc=$(command -v swiftc 2>/dev/null); then
  toolchain=$(cd "$(dirname "$swiftc")/../.." && pwd -P)
  if [ -x "$toolchain/usr/bin/swiftc" ] && [ "$toolchain" != / ] && [ "${toolchain#/usr}" = "$toolchain" ]; then
    mount_in bind "$toolchain" "$toolchain" ro
    swift_path=:$toolchain/usr/bin
  fi
fi
# Local folders pip is configured to find wheels in (find-links), read-only.
for links in ${PIP_FIND_LINKS:-} $(cat /etc/pip.conf "$HOME/.config/pip/pip.conf" 2>/dev/null | sed -n 's/^[[:space:]]*find-links[[:space:]]*=//p'); do
  links=${links#file://}
  [ -d "$links" ] && [ ! -d "$root$links" ] && mount_in bind "$links" "$links" ro
done

# 3. setup.sh and the self-check, inside the root.
keep_env=()
while IFS='=' read -r name _; do
  case $name in PIP_*|SSL_*|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY) keep_env+=("$name=${!name}") ;; esac
done < <(env)
say "running scripts/setup.sh and scripts/doctor.sh --tests in $root"
status=0
env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin$swift_path" "${keep_env[@]}" \
  chroot "$root" /bin/bash -c 'cd /src && bash scripts/setup.sh && bash scripts/doctor.sh --tests' || status=$?
elapsed=$(( $(date +%s) - started ))
if [ "$status" != 0 ]; then
  say "FAILED after ${elapsed}s: a new Debian 12 machine would not get a working toolchain from scripts/setup.sh (see above)" >&2
  exit 1
fi
say "passed in ${elapsed}s"

# shellcheck shell=bash
# Shared by every script under deploy/ that installs what it needs (sourced, not run):
# Debian packages through apt-get, as root, or through sudo for anyone else. Every
# package and download the scripts fetch is listed in the root README ("Two commands").

# as_root CMD...: runs CMD as root: directly when this is root, else through sudo (which
# may ask for a password). Without sudo it fails saying what to run as root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    printf '%s\n' "needs root: $*" \
      "sudo is not installed: run that as root (or install sudo), then run this again" >&2
    return 1
  fi
}

# ensure_pkgs PACKAGE...: installs the Debian packages among PACKAGE that are not
# installed yet (nothing, and no sudo, when all are); the package lists are fetched
# first when there are none, and again when an install fails on stale ones. Fails
# naming the packages and the command to run when it cannot install them.
ensure_pkgs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    printf '%s\n' "missing Debian packages: ${missing[*]}; installing them needs root, and sudo is not" \
      "installed: as root run  apt-get install -y ${missing[*]}  then run this again" >&2
    return 1
  fi
  printf '%s\n' "installing Debian packages: ${missing[*]}" >&2
  if ! {
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
      as_root apt-get update -qq >&2
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || {
      as_root apt-get update -qq >&2 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    }
  }; then
    printf '%s\n' "could not install ${missing[*]}: install them with" \
      "  sudo apt-get install -y ${missing[*]}" "then run this again" >&2
    return 1
  fi
}

# apt_download PACKAGE: the package's .deb into the current directory (no root needed
# while the package lists are there; fetching them needs root).
apt_download() {
  apt-get download "$1" >/dev/null 2>&1 && return 0
  as_root apt-get update -qq >&2 && apt-get download "$1" >/dev/null
}

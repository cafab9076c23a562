# shellcheck shell=bash
# Helpers for .ci/tools/*.sh, which are *sourced*: they define functions and variables,
# never `exit` or `set -e` (that would end the caller's shell), and print only errors.

# Where the tools live between runs (a fresh machine builds it once).
PINIP_TOOL_CACHE="${PINIP_TOOL_CACHE:-${HOME:-/root}/.cache}"

# pinip_quiet LOG CMD...: run CMD with its output in LOG; on failure print LOG and fail.
pinip_quiet() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "pinip: '$*' failed:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

# pinip_venv DIR PACKAGE...: a Python venv at DIR holding exactly the pinned PACKAGEs,
# rebuilt when the pins change. python3-venv comes from Debian when missing.
pinip_venv() {
  local dir=$1
  shift
  local want="$*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.pinned" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local log
  log=$(mktemp)
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  if ! python3 -m venv "$dir" >"$log" 2>&1; then
    rm -rf "$dir"
    pinip_quiet "$log" apt-get update -qq || return 1
    pinip_quiet "$log" apt-get install -y -qq python3-venv || return 1
    pinip_quiet "$log" python3 -m venv "$dir" || return 1
  fi
  pinip_quiet "$log" "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" || {
    rm -rf "$dir"
    return 1
  }
  echo "$want" >"$dir/.pinned"
  rm -f "$log"
}

# pinip_cargo_tool CRATE VERSION BINARY: `cargo install --locked` CRATE@VERSION into the
# cache once; prints the path of BINARY.
pinip_cargo_tool() {
  local crate=$1 version=$2 binary=$3
  local root="$PINIP_TOOL_CACHE/pinip-$crate-$version"
  if [ ! -x "$root/bin/$binary" ]; then
    local log
    log=$(mktemp)
    # Its own temporary build directory, not the project's target dir.
    pinip_quiet "$log" env -u CARGO_TARGET_DIR cargo install --quiet --locked --root "$root" "$crate@$version" || return 1
    rm -f "$log"
  fi
  echo "$root/bin/$binary"
}

# shellcheck shell=bash
# promtool, from Debian's `prometheus` package: checks and unit-tests the alerting rules
# of deploy/monitoring (tests/monitoring_rules.rs). Source it: downloads the .deb once
# and unpacks only promtool into the cache (nothing is installed system-wide, no
# Prometheus service), exports PINIP_PROMTOOL.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
pinip_promtool() {
  local dir="$PINIP_TOOL_CACHE/pinip-promtool"
  if [ ! -x "$dir/promtool" ]; then
    local work log
    work=$(mktemp -d)
    log="$work/log"
    # apt-get download writes into the current directory, as user _apt when it can.
    chmod 0755 "$work"
    if ! (cd "$work" && apt-get download prometheus >"$log" 2>&1); then
      pinip_quiet "$log" apt-get update -qq || return 1
      (cd "$work" && pinip_quiet "$log" apt-get download prometheus) || return 1
    fi
    pinip_quiet "$log" dpkg-deb -x "$work"/prometheus_*.deb "$work/root" || return 1
    mkdir -p "$dir"
    install -m 0755 "$work/root/usr/bin/promtool" "$dir/promtool" || return 1
    rm -rf "$work"
  fi
  export PINIP_PROMTOOL="$dir/promtool"
}
pinip_promtool

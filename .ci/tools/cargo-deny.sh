# shellcheck shell=bash
# cargo-deny: advisories, licences, bans and sources of the dependency tree (deny.toml),
# run by .ci/run. Source it: builds cargo-deny once into the cache (`cargo install
# --locked`, from crates.io), exports PINIP_CARGO_DENY. The advisory database is not
# fetched (no GitHub here): .ci/supply-chain reads ../shared/advisory-db.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
PINIP_CARGO_DENY_VERSION=0.20.2
PINIP_CARGO_DENY=$(pinip_cargo_tool cargo-deny "$PINIP_CARGO_DENY_VERSION" cargo-deny) && export PINIP_CARGO_DENY

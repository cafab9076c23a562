# shellcheck shell=bash
# cargo-cyclonedx (OWASP CycloneDX, from crates.io): the SBOM of the agent binary's
# dependency tree, written by .ci/supply-chain. Source it: builds it once into the
# cache, exports PINIP_CARGO_CYCLONEDX.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
PINIP_CARGO_CYCLONEDX=$(pinip_cargo_tool cargo-cyclonedx 0.5.9 cargo-cyclonedx) && export PINIP_CARGO_CYCLONEDX

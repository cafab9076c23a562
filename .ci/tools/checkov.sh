# shellcheck shell=bash
# checkov (PyPI): the static scan of the terraform, the Dockerfile and the rendered Helm
# chart. Source it: installs into a cached venv once (its own: checkov's bc-python-hcl2
# and python-hcl2 install the same module), exports PINIP_CHECKOV.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
PINIP_CHECKOV_VERSION=3.3.30
pinip_venv "$PINIP_TOOL_CACHE/pinip-checkov-$PINIP_CHECKOV_VERSION" "checkov==$PINIP_CHECKOV_VERSION" \
  && export PINIP_CHECKOV="$PINIP_TOOL_CACHE/pinip-checkov-$PINIP_CHECKOV_VERSION/bin/checkov"

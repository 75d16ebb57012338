#!/usr/bin/env bash
# `make demo`: the appliance on its embedded defaults (PGlite control DB under .data/demo) with
# the offshore-well plant simulated, until Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
BUN="$REPO_ROOT/.tools/node_modules/.bin/bun"
DEMO_PORT="${DEMO_PORT:-8080}"
DEMO_DATA="${DEMO_DATA:-$REPO_ROOT/.data/demo}"
mkdir -p "$DEMO_DATA"
export GATEWAY_DATA_DIR="$DEMO_DATA"

SIM_PORT=15020

# The admin user is created on the first start of a fresh data folder, with this password; a demo
# gets a fixed one so a new user can sign in without reading docs (set it yourself to choose).
if [[ -z "${GATEWAY_ADMIN_PASSWORD:-}" ]]; then
  export GATEWAY_ADMIN_PASSWORD="gateway-demo"
  admin_password_shown="$GATEWAY_ADMIN_PASSWORD"
else
  export GATEWAY_ADMIN_PASSWORD
  admin_password_shown='(your GATEWAY_ADMIN_PASSWORD)'
fi
# An existing data folder keeps the admin password of the start that created it.
if [[ -d "$DEMO_DATA/control-db" ]]; then
  admin_password_note="  (unless $DEMO_DATA was first started with another password: delete it for a fresh demo)"
else
  admin_password_note=""
fi

"$BUN" src/main.ts migrate --config demo/gateway.yaml

"$BUN" src/main.ts simulate modbus --port "$SIM_PORT" --plant plants/offshore-well.yaml &
simulator=$!
trap 'kill $simulator 2>/dev/null' EXIT

echo "Industrial Data Gateway demo: http://127.0.0.1:${DEMO_PORT}  (simulated offshore well on Modbus TCP :${SIM_PORT})"
echo "Sign in at http://127.0.0.1:${DEMO_PORT} as admin / ${admin_password_shown}${admin_password_note}"
"$BUN" src/main.ts serve --config demo/gateway.yaml --port "$DEMO_PORT"

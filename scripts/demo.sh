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

"$BUN" src/main.ts migrate --config demo/gateway.yaml

"$BUN" src/main.ts simulate modbus --port "$SIM_PORT" --plant plants/offshore-well.yaml &
simulator=$!
trap 'kill $simulator 2>/dev/null' EXIT

echo "Industrial Data Gateway demo: http://127.0.0.1:${DEMO_PORT}  (simulated offshore well on Modbus TCP :${SIM_PORT})"
"$BUN" src/main.ts serve --config demo/gateway.yaml --port "$DEMO_PORT"

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

"$BUN" src/main.ts migrate --config demo/gateway.yaml
echo "Industrial Data Gateway demo: http://127.0.0.1:${DEMO_PORT}"
exec "$BUN" src/main.ts serve --config demo/gateway.yaml --port "$DEMO_PORT" --data-dir "$DEMO_DATA"

#!/usr/bin/env bash
# The browser benchmark (not run in CI): hublink's package and @microsoft/signalr on one page
# in headless Chromium, against one release test server, round after round (bench/bench.mjs).
# Echo with 100 calls in flight and a long stream, JSON and MessagePack over WebSockets.
#
#   wasm/bench.sh [--rounds N] [--seconds S] [--items N]      (defaults 3, 3, 100000)
#
# Needs what run-tests.sh installs (run it once first).
set -euo pipefail
WASM_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$WASM_DIR")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$WASM_DIR"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
./build.sh
cargo build --release -p hublink-testserver --manifest-path "$ROOT/Cargo.toml"
SERVER_OUT="$(mktemp)"
"$CARGO_TARGET_DIR/release/hublink-testserver" >"$SERVER_OUT" 2>/dev/null &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$SERVER_OUT"' EXIT
for _ in $(seq 100); do
    BASE="$(head -n1 "$SERVER_OUT")"
    [ -n "$BASE" ] && break
    sleep 0.1
done
node bench/bench.mjs "$BASE" "$@"

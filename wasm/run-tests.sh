#!/usr/bin/env bash
# Builds the npm package `hublink` (wasm/pkg) and runs tests/suite.js in headless Chromium
# against the in-repo test server, for every transport × protocol pair. Installs what it
# lacks: Debian's chromium + chromium-driver, the wasm32 target, wasm-bindgen-cli 0.2.130,
# and the npm dev dependencies (binaryen's wasm-opt, playwright-core, the official client).
#
#   HUBLINK_WASM_OFFICIAL=1  also runs the same suite against @microsoft/signalr (drop-in check)
#   HUBLINK_WASM_SIZE=1      prints the package's sizes (raw and gzipped), also of a JSON-only
#                            build, next to the official client's
#   HUBLINK_WASM_LINT=0      skips rustfmt and clippy of the wasm crate (its own workspace)
set -euo pipefail

WASM_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$WASM_DIR")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM_BINDGEN_VERSION=0.2.130

say() { printf '\n== %s\n' "$*"; }

if ! command -v chromium >/dev/null; then
    say "installing chromium (apt)"
    "$ROOT/scripts/apt-install.sh" chromium chromium-driver
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes minutes)"
    # Not --locked: its lock file pins a yanked webpki-roots.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
cd "$WASM_DIR"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund

if [ "${HUBLINK_WASM_LINT:-1}" = 1 ]; then
    # The wasm crate is its own workspace: the root's `cargo fmt --all` and clippy miss it.
    say "rustfmt and clippy (wasm32) of the wasm crate"
    cargo fmt --manifest-path Cargo.toml -- --check
    cargo clippy --manifest-path Cargo.toml --target wasm32-unknown-unknown --all-targets -- -D warnings
fi

say "building the package (JSON + MessagePack)"
./build.sh pkg
npm pack --dry-run >/dev/null 2>&1 || { echo "npm pack failed" >&2; exit 1; }

if [ "${HUBLINK_WASM_SIZE:-0}" = 1 ]; then
    SIZE_DIR="$CARGO_TARGET_DIR/wasm-size"
    say "building the JSON-only variant (for the size report)"
    ./build.sh "$SIZE_DIR/json" --no-default-features
    gz() { gzip -9c "$1" | wc -c; }
    say "sizes (bytes: raw / gzip -9; .wasm + wasm-bindgen glue + index.js)"
    for dir in "$SIZE_DIR/json" pkg; do
        label="JSON only"; [ "$dir" = pkg ] && label="JSON + MessagePack (the package)"
        echo "$label"
        total=0
        for f in hublink_wasm_bg.wasm hublink_wasm.js index.js; do
            printf '  %-24s %8d / %7d\n' "$f" "$(wc -c <"$dir/$f")" "$(gz "$dir/$f")"
            total=$((total + $(gz "$dir/$f")))
        done
        printf '  %-24s %8s / %7d\n' "total" "" "$total"
    done
    official=node_modules/@microsoft/signalr/dist/browser/signalr.min.js
    msgpack=node_modules/@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js
    echo "@microsoft/signalr (minified browser bundles)"
    printf '  %-24s %8s / %7d\n' "JSON" "" "$(gz "$official")"
    printf '  %-24s %8s / %7d\n' "JSON + MessagePack" "" "$(( $(gz "$official") + $(gz "$msgpack") ))"
fi

say "starting the test server"
cargo build -p hublink-testserver --manifest-path "$ROOT/Cargo.toml"
SERVER_OUT="$(mktemp)"
"$CARGO_TARGET_DIR/debug/hublink-testserver" --long-poll-timeout-ms 1000 >"$SERVER_OUT" 2>/dev/null &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$SERVER_OUT"' EXIT
for _ in $(seq 100); do
    BASE="$(head -n1 "$SERVER_OUT")"
    [ -n "$BASE" ] && break
    kill -0 "$SERVER_PID" || { echo "the test server exited" >&2; exit 1; }
    sleep 0.1
done
case "$BASE" in http://*) ;; *) echo "the test server printed '$BASE'" >&2; exit 1 ;; esac

say "browser tests against $BASE"
TARGETS=(hublink)
[ "${HUBLINK_WASM_OFFICIAL:-0}" = 1 ] && TARGETS+=(official)
timeout 600 node tests/run.mjs "$BASE" "${TARGETS[@]}"
echo "wasm/run-tests.sh: ${SECONDS} s"

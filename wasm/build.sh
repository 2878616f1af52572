#!/usr/bin/env bash
# Builds the npm package's files into an output folder: the core as WebAssembly (profile
# wasm-release: opt-level "s", LTO, one codegen unit, panic=abort), wasm-bindgen's ES module
# glue, then wasm-opt -Oz from npm's binaryen (Debian's 108 produces a module Chromium
# rejects), and the hand-written index.js / index.d.ts.
#
#   wasm/build.sh [OUT_DIR] [cargo flags…]     OUT_DIR defaults to wasm/pkg
#   wasm/build.sh "$dir" --no-default-features  the JSON-only variant (no MessagePack)
#
# Needs wasm-bindgen 0.2.130 on PATH and `npm ci` done in wasm/ (run-tests.sh sees to both).
set -euo pipefail
WASM_DIR="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$WASM_DIR")/target}"
OUT="${1:-$WASM_DIR/pkg}"
shift || true

cd "$WASM_DIR"
cargo build --manifest-path Cargo.toml --target wasm32-unknown-unknown --profile wasm-release "$@"
rm -rf "$OUT" && mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/hublink_wasm.wasm"
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-reference-types \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-multivalue \
    "$OUT/hublink_wasm_bg.wasm" -o "$OUT/hublink_wasm_bg.wasm"
cp js/index.js js/index.d.ts "$OUT/"

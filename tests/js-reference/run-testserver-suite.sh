#!/usr/bin/env bash
# Builds hublink's in-repo test server (tests/testserver) and runs the official
# @microsoft/signalr client against it (tests/js-reference/testserver.test.mjs).
# Exits non-zero if the build or any test fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

cd "$root"
cargo build -q -p hublink-testserver
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
bin="$target_dir/debug/hublink-testserver"
[ -x "$bin" ] || { echo "error: $bin was not built" >&2; exit 1; }

cd "$here"
if [ ! -d node_modules/@microsoft/signalr ] || [ ! -d node_modules/@microsoft/signalr-protocol-msgpack ]; then
  npm ci --no-audit --no-fund
fi

# The suite bounds every wait itself; this outer bound only guards against a hung runner.
TEST_SERVER_BIN="$bin" timeout 300 node --test --test-reporter=spec testserver.test.mjs "$@"

#!/usr/bin/env bash
# Builds hublink's in-repo test server (tests/testserver) and runs the official
# @microsoft/signalr client under injected faults (tests/js-reference/faults.test.mjs):
# random WebSocket drops with and without stateful reconnect, wrong or missing Sequence.
# The comparison with hublink is at the top of faults.test.mjs.
# HUBLINK_SOAK_DROPS / HUBLINK_SOAK_MESSAGES / HUBLINK_SOAK_SEED size the soaks.
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

# Every scenario is bounded (calls, child processes); this outer bound only guards against a
# hung runner.
TEST_SERVER_BIN="$bin" timeout 600 node --test --test-reporter=spec faults.test.mjs "$@"

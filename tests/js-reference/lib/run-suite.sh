#!/usr/bin/env bash
# Shared by tests/js-reference/run-*-suite.sh: builds hublink's in-repo test server
# (tests/testserver), installs the JS client if missing, then runs
#   TEST_SERVER_BIN=<server> timeout <seconds> node --test --test-reporter=spec <file> [args...]
# in tests/js-reference. Usage: run-suite.sh <seconds> <file> [node --test args...]
# Exits non-zero if the build or any test fails.
set -euo pipefail
limit="$1" file="$2"
shift 2
here="$(cd "$(dirname "$0")/.." && pwd)"
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

TEST_SERVER_BIN="$bin" timeout "$limit" node --test --test-reporter=spec "$file" "$@"

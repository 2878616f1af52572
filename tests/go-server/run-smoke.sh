#!/usr/bin/env bash
# Builds the Go SignalR test host and runs the official-JS-client smoke test
# (tests/js-reference/go-smoke.test.mjs) against it. Exits non-zero on failure.
#
# Needs: Go >= 1.25 (module proxy reachable on first build), Node 20 + npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
js_dir="$(cd "$here/../js-reference" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hublink-goserver-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "==> building Go test host into $tmp" >&2
(cd "$here" && timeout 300 go build -o "$tmp/hublink-goserver" .)

if [ ! -d "$js_dir/node_modules/@microsoft/signalr" ] || [ ! -d "$js_dir/node_modules/@microsoft/signalr-protocol-msgpack" ]; then
    echo "==> npm ci in $js_dir" >&2
    (cd "$js_dir" && timeout 300 npm ci --no-audit --no-fund)
fi

echo "==> node --test go-smoke.test.mjs" >&2
cd "$js_dir"
GO_SERVER_BIN="$tmp/hublink-goserver" timeout 180 node --test go-smoke.test.mjs

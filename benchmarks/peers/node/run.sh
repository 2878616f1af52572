#!/usr/bin/env bash
# Runs the official-client benchmark peer (arguments: see ../README.md); `npm ci` on first use
# (or with `--prepare`, which only does that).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -d "$here/node_modules/@microsoft/signalr" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent) >&2
fi
[ "${1:-}" = "--prepare" ] && exit 0
exec node "$here/peer.mjs" "$@"

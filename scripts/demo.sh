#!/usr/bin/env bash
# The README's demo: clients chatting through a hub on the bundled test server (in-process).
# Pass `--url <hub url>` to run it against your own server instead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet -p hublink-chat-demo -- "$@"

#!/usr/bin/env bash
# Builds hublink's in-repo test server (tests/testserver) and runs the official
# @microsoft/signalr client under injected faults (tests/js-reference/faults.test.mjs):
# random WebSocket drops with and without stateful reconnect, wrong or missing Sequence.
# The comparison with hublink is at the top of faults.test.mjs.
# HUBLINK_SOAK_DROPS / HUBLINK_SOAK_MESSAGES / HUBLINK_SOAK_SEED size the soaks.
# Exits non-zero if the build or any test fails.
set -euo pipefail
# Every scenario is bounded (calls, child processes); this outer bound only guards against a
# hung runner.
exec "$(dirname "$0")/lib/run-suite.sh" 600 faults.test.mjs "$@"

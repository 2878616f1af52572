#!/usr/bin/env bash
# Builds hublink's in-repo test server (tests/testserver) and runs the official
# @microsoft/signalr client against it (tests/js-reference/testserver.test.mjs).
# Exits non-zero if the build or any test fails.
set -euo pipefail
# The suite bounds every wait itself; this outer bound only guards against a hung runner.
exec "$(dirname "$0")/lib/run-suite.sh" 300 testserver.test.mjs "$@"

#!/usr/bin/env bash
# Regenerates tests/vectors/ with the pinned official packages and fails if anything changed.
set -euo pipefail
cd "$(dirname "$0")/../tests/vectors/generate"
npm ci --no-audit --no-fund --loglevel=error
node generate.mjs
cd ../../..
git diff --exit-code -- tests/vectors ':!tests/vectors/generate/node_modules' || {
  echo "tests/vectors/ differ from what the official packages produce" >&2
  exit 1
}

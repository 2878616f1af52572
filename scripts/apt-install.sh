#!/usr/bin/env bash
# Installs Debian packages for the tests: apt-get install, and when that fails (stale package
# lists, or a package left half-configured by an earlier run that was cut short), update the
# lists, let apt finish what it left broken, and try once more. One install at a time
# (a lock), so parallel tests that need the same packages wait for each other.
# Usage: scripts/apt-install.sh PACKAGE...
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
(
  flock 9
  apt-get install -y -qq "$@" >/dev/null 2>&1 || {
    echo "apt-install: first try failed; updating the lists and repairing" >&2
    apt-get update -qq >/dev/null
    apt-get --fix-broken install -y -qq >/dev/null
    apt-get install -y -qq "$@" >/dev/null
  }
) 9>"${TMPDIR:-/tmp}/hublink-apt-install.lock"

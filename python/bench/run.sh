#!/usr/bin/env bash
# The Python benchmark: hublink (release wheel) vs pysignalr and signalrcore (pinned), against
# the release test server, in one run. Arguments go to bench.py (e.g. --seconds 5 --markdown).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${VENV:-$here/.venv-bench}"
[ -x "$venv/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt" -r "$here/requirements-bench.txt"
rm -rf "$here/dist-bench"
(cd "$here" && "$venv/bin/maturin" build --release --out "$here/dist-bench" --interpreter "$venv/bin/python")
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"/dist-bench/hublink-*.whl
(cd "$root" && cargo build --release -p hublink-testserver)
cd "$here/bench" && exec "$venv/bin/python" bench.py --server "$root/target/release/hublink-testserver" "$@"

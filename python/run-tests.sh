#!/usr/bin/env bash
# Builds the hublink wheel, installs it in a fresh venv and runs the Python suite against the
# in-repo test server, then checks the type stubs (mypy stubtest) and the package (mypy --strict).
#
#   python/run-tests.sh            # debug wheel (fast to build; what CI runs)
#   RELEASE=1 python/run-tests.sh  # release wheel
#
# Environment: PYTHON (default python3.11), VENV (default python/.venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3.11}"
venv="${VENV:-$here/.venv}"

step() { printf '\n=== %s\n' "$*"; }

step "venv ($venv) and pinned test dependencies"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"

step "wheel (maturin)"
profile=()
[ "${RELEASE:-0}" = 1 ] && profile=(--release)
rm -rf "$here/dist"
(cd "$here" && "$venv/bin/maturin" build "${profile[@]}" --out "$here/dist" --interpreter "$venv/bin/python")
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"/dist/hublink-*.whl

step "test server"
(cd "$root" && cargo build -p hublink-testserver)
export HUBLINK_TESTSERVER="$root/target/debug/hublink-testserver"

step "pytest"
# Run from the tests directory so that the installed wheel, not the source tree, is imported.
(cd "$here/tests" && "$venv/bin/python" -m pytest -p no:cacheprovider -q --rootdir "$here" -c "$here/pyproject.toml" "$here/tests")

step "typing: stubtest and mypy --strict"
(cd "$here/tests" && "$venv/bin/python" -m mypy.stubtest hublink._native)
(cd "$here/tests" && "$venv/bin/python" -m mypy --strict --no-incremental -p hublink)
(cd "$here" && "$venv/bin/python" -m mypy --strict --no-incremental "$root/examples/python/chat.py")

step "ruff"
"$venv/bin/ruff" check "$here/hublink" "$here/tests" "$root/examples/python"

#!/usr/bin/env bash
# Checks what a user downloads, not only what this machine runs, with one build:
#   1. the sdist (maturin sdist) holds the core crate;
#   2. a wheel built from the sdist alone (pip wheel, PEP 517 through maturin), linked by zig
#      against glibc 2.17 (manylinux2014): auditwheel's verdict on it must be manylinux_2_17
#      or older, and it imports in a fresh venv with the package's version.
#
#   python/check-wheel.sh                        # dev profile (what CI runs: the glibc
#                                                # symbols a wheel needs do not depend on it)
#   CHECK_WHEEL_PROFILE=release python/check-wheel.sh   # the wheel as released
#
# Environment: PYTHON (default python3.11), VENV (default python/.venv, created if missing),
# CARGO_TARGET_DIR (default target/ at the repository root). Everything it writes goes to
# $CARGO_TARGET_DIR/check-wheel/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3.11}"
venv="${VENV:-$here/.venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
work="$CARGO_TARGET_DIR/check-wheel"
# maturin finds zig as `python3 -m ziglang` on PATH: the venv's, which has the pinned ziglang.
export PATH="$venv/bin:$PATH"
arch="$(uname -m)"
triple="$arch-unknown-linux-gnu"
# A build that does not end in this time has hung: the cold ones take 8-10 minutes on 2 cores.
limit="${CHECK_WHEEL_TIMEOUT:-2400}"

step() { printf '\n=== %s\n' "$*"; }
fail() { printf 'check-wheel: %s\n' "$*" >&2; exit 1; }

version="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$here/pyproject.toml")"

step "venv ($venv) and pinned wheel tools (requirements-wheel.txt)"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-wheel.txt"
rm -rf "$work"
mkdir -p "$work"

# auditwheel show WHEEL: fails unless the wheel's file name and auditwheel's verdict are both
# manylinux_2_17 or older (manylinux2014, manylinux2010, manylinux1 are aliases of 2_17, 2_12, 2_5).
audit() {
  local wheel="$1" report tag name_tags
  report="$("$venv/bin/auditwheel" show "$wheel")" || fail "auditwheel show failed on $wheel"
  printf '%s\n' "$report"
  tag="$(printf '%s\n' "$report" | tr '\n' ' ' |
    sed -n 's/.*consistent with the following platform tag: *"\([^"]*\)".*/\1/p')"
  [ -n "$tag" ] || fail "no platform tag in auditwheel's report on $(basename "$wheel")"
  glibc_at_most_2_17 "$tag" || fail "auditwheel: $(basename "$wheel") is $tag, not manylinux_2_17 compatible"
  name_tags="$(basename "$wheel" .whl)"
  name_tags="${name_tags##*-}"
  local t ok=0
  IFS=. read -ra parts <<<"$name_tags"
  for t in "${parts[@]}"; do
    glibc_at_most_2_17 "$t" || fail "wheel file name tag $t is not manylinux_2_17 compatible"
    ok=1
  done
  [ "$ok" = 1 ] || fail "no platform tag in the name of $(basename "$wheel")"
  printf 'check-wheel: %s: auditwheel says %s\n' "$(basename "$wheel")" "$tag"
}
glibc_at_most_2_17() {
  case "$1" in
    manylinux1_"$arch" | manylinux2010_"$arch" | manylinux2014_"$arch") return 0 ;;
  esac
  [[ "$1" =~ ^manylinux_2_([0-9]+)_"$arch"$ ]] && [ "${BASH_REMATCH[1]}" -le 17 ]
}

# smoke WHEEL: installs it alone in a fresh venv and imports it from outside the source tree.
smoke() {
  local wheel="$1" scratch="$work/venv-$2"
  rm -rf "$scratch"
  "$python" -m venv "$scratch"
  "$scratch/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel"
  (cd "$work" && "$scratch/bin/python" -c '
import sys, hublink
assert hublink.__version__ == sys.argv[1], (hublink.__version__, sys.argv[1])
assert hublink.HubConnectionBuilder is not None
print("check-wheel: import hublink", hublink.__version__, "from", hublink.__file__)
' "$version")
}

step "sdist (maturin sdist)"
(cd "$here" && maturin sdist --out "$work/sdist")
sdists=("$work"/sdist/hublink-*.tar.gz)
[ "${#sdists[@]}" = 1 ] && [ -f "${sdists[0]}" ] || fail "expected one sdist in $work/sdist"
tar tzf "${sdists[0]}" >"$work/sdist/files"
grep -q '^hublink-[^/]*/core/src/lib\.rs$' "$work/sdist/files" || fail "the sdist lacks the core crate (core/src/lib.rs)"

step "a manylinux2014 wheel from the sdist alone (pip wheel → maturin --zig, glibc 2.17)"
# Unpacked at a fixed place so that a later run reuses the compiled dependencies; the
# tarball's files all carry one old date, so they are dated now: cargo then compiles the
# workspace crates from these sources rather than trust artifacts of an earlier run.
mkdir -p "$work/sdist-src"
tar xzf "${sdists[0]}" -C "$work/sdist-src"
src=("$work"/sdist-src/hublink-*)
find "${src[0]}" -exec touch {} +
MATURIN_PEP517_ARGS="--zig --compatibility manylinux2014 --target $triple --profile ${CHECK_WHEEL_PROFILE:-dev}" \
  timeout "$limit" "$venv/bin/python" -m pip wheel --disable-pip-version-check --no-cache-dir --no-deps \
  --no-build-isolation --wheel-dir "$work/from-sdist" "${src[0]}"
from_sdist=("$work"/from-sdist/hublink-*.whl)
[ -f "${from_sdist[0]}" ] || fail "pip wheel made no wheel from the sdist"
audit "${from_sdist[0]}"
smoke "${from_sdist[0]}" sdist

printf '\ncheck-wheel: %s and %s pass\n' "$(basename "${from_sdist[0]}")" "$(basename "${sdists[0]}")"

#!/usr/bin/env bash
# The public API of hublink and hublink-proto, one item per line, in core/public-api.txt and
# core/proto/public-api.txt. Every change to either API then shows in review as a change to
# these files.
#
#   scripts/public-api.sh           rewrites both files
#   scripts/public-api.sh --check   fails with a diff if a committed file differs (CI)
#
# How: rustdoc JSON (a nightly-only output) of both crates from one `cargo doc --no-deps`, read
# by scripts/public-api/ (a small stable-built tool on the `public-api` crate) with blanket
# impls left out. The nightly is pinned, because the JSON format changes between nightlies and
# the public-api version must read it: format 57, public-api =0.52.1. To move the pin, change
# NIGHTLY and BUILD here and the public-api version and FORMAT_VERSION in scripts/public-api/.
# The nightly build lives in its own target folder (target/public-api/), so it neither
# invalidates nor is invalidated by the stable builds; after the first run it only re-documents
# the two crates.
set -euo pipefail
cd "$(dirname "$0")/.."

NIGHTLY=nightly-2026-05-20              # the dated name rustup installs
BUILD="1.97.0-nightly (e50aa6fba 2026-05-19)"   # what its rustc --version says

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# The pinned nightly: PUBLIC_API_TOOLCHAIN if set, else the dated toolchain, else a `nightly`
# that is the same build, else install the dated one.
toolchain="${PUBLIC_API_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  if rustup toolchain list | grep -q "^$NIGHTLY"; then
    toolchain="$NIGHTLY"
  elif RUSTUP_AUTO_INSTALL=0 rustup run nightly rustc --version 2>/dev/null | grep -qF "$BUILD"; then
    toolchain=nightly
  else
    echo "public-api: installing $NIGHTLY"
    rustup toolchain install "$NIGHTLY" --profile minimal
    toolchain="$NIGHTLY"
  fi
fi

base="${CARGO_TARGET_DIR:-$PWD/target}"
tool_dir="$base/public-api-tool"
doc_dir="$base/public-api"

# The reader, on the default (stable) toolchain, with its own lock file.
CARGO_TARGET_DIR="$tool_dir" cargo build --quiet --release --locked \
  --manifest-path scripts/public-api/Cargo.toml
tool="$tool_dir/release/hublink-public-api"

# Both crates' rustdoc JSON in one nightly run (dependencies are only checked, not documented).
RUSTDOCFLAGS="-Z unstable-options --output-format json" CARGO_TARGET_DIR="$doc_dir" \
  cargo "+$toolchain" doc --quiet --no-deps --locked -p hublink -p hublink-proto

status=0
for pair in hublink:core/public-api.txt hublink_proto:core/proto/public-api.txt; do
  crate="${pair%%:*}"
  file="${pair#*:}"
  fresh="$(mktemp)"
  "$tool" "$doc_dir/doc/$crate.json" >"$fresh"
  if [ "$check" = 1 ]; then
    if ! diff -u --label "$file (committed)" --label "$file (this tree)" "$file" "$fresh"; then
      echo "public-api: the public API of $crate changed; run scripts/public-api.sh and commit $file" >&2
      status=1
    fi
    rm -f "$fresh"
  else
    mv "$fresh" "$file"
    echo "public-api: $file ($(wc -l <"$file") items)"
  fi
done
exit "$status"

#!/usr/bin/env bash
# Runs the Kotlin benchmark peer (arguments: see ../README.md) on the release libhublink_ffi.so.
# The first run (or `run.sh --prepare`, which only builds) builds everything it needs, printing to stderr only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
lib="$target/release/libhublink_ffi.so"
cp_file="$here/target/classpath.txt"
if [ "${1:-}" = "--prepare" ] || [ ! -f "$cp_file" ] || [ ! -f "$lib" ] || [ "$lib" -nt "$cp_file" ]; then
  {
    (cd "$root" && cargo build --release -p hublink-ffi --lib && cargo build -p hublink-ffi --bin uniffi-bindgen)
    gen="$root/bindings/kotlin/target/generated-sources/uniffi"
    rm -rf "$gen"
    # The (debug) generator reads the release library's metadata.
    "$target/debug/uniffi-bindgen" generate "$lib" --language kotlin --out-dir "$gen" --no-format
    (cd "$root/bindings/kotlin" && mvn -B -q -Dstyle.color=never ${MVN_ARGS:-} install -DskipTests)
    (cd "$here" && mvn -B -q -Dstyle.color=never ${MVN_ARGS:-} package dependency:build-classpath -Dmdep.outputFile="$cp_file")
  } >&2
  [ "${1:-}" = "--prepare" ] && exit 0
fi
exec java -Xmx1g -Djna.library.path="$target/release" -cp "$here/target/classes:$(cat "$cp_file")" \
  io.hublink.bench.PeerKt "$@"

#!/usr/bin/env bash
# Builds and runs the Kotlin chat example (the same chat as scripts/demo.sh) against the bundled
# test server, or against `--url <hub url>`. Needs the binding in the local Maven repository
# (bindings/kotlin/run-tests.sh installs it; or `mvn -B -q install -DskipTests` in
# bindings/kotlin after generating its sources) and target/debug/libhublink_ffi.so.
# Environment: CARGO_TARGET_DIR, MVN_ARGS (extra Maven arguments, e.g. -o).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$here"
# shellcheck disable=SC2086
mvn -B -q -Dstyle.color=never ${MVN_ARGS:-} package dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >&2
export HUBLINK_TESTSERVER="${HUBLINK_TESTSERVER:-$target/debug/hublink-testserver}"
exec java -Djna.library.path="$target/debug" -cp "target/classes:$(cat target/classpath.txt)" \
  io.hublink.examples.chat.ChatKt "$@"

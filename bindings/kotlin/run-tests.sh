#!/usr/bin/env bash
# The Kotlin binding's tests: builds hublink-ffi (debug) and the test server, generates the
# Kotlin bindings from the built library into target/generated-sources/uniffi (never
# committed), starts the test server, runs `mvn -B install` (the JUnit tests against it, then
# the jar into ~/.m2), stops the server, then builds and runs the Kotlin chat example
# (examples/kotlin-chat) and checks its output.
#
# Needs: cargo, a JDK (17+) and Maven; Maven downloads Kotlin and the libraries into ~/.m2 on
# the first run. Environment: CARGO_TARGET_DIR (default: <repo>/target), MVN_ARGS (extra
# Maven arguments, e.g. -o when ~/.m2 is complete).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
start=$(date +%s)

if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  # A JDK 17+ and Maven (Debian's); Maven fetches Kotlin and the libraries itself.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
  else
    echo "error: a JDK 17+ and Maven are needed (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
fi

# The layer must serve Android as it is: it may import only Kotlin, kotlinx, its own package
# and java.util.concurrent (all on Android), never other JVM-only APIs.
bad="$(grep -hE '^import ' "$here"/src/main/kotlin/io/hublink/*.kt \
  | grep -vE '^import (kotlin|kotlinx|io\.hublink)\.|^import java\.util\.concurrent\.' || true)"
if [ -n "$bad" ]; then
  echo "error: the Kotlin layer imports APIs that Android may not have:" >&2
  echo "$bad" >&2
  exit 1
fi

cd "$root"
cargo build -p hublink-ffi -p hublink-testserver
lib="$target/debug/libhublink_ffi.so"
gen="$here/target/generated-sources/uniffi"
rm -rf "$gen"
"$target/debug/uniffi-bindgen" generate "$lib" --language kotlin --out-dir "$gen" --no-format

# The test server prints its base URL on stdout's first line.
log="$(mktemp)"
"$target/debug/hublink-testserver" --long-poll-timeout-ms 1000 >"$log" 2>/dev/null &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
url=""
for _ in $(seq 100); do
  url="$(head -n1 "$log" 2>/dev/null || true)"
  [[ "$url" == http://* ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: the test server exited" >&2; exit 1; }
  sleep 0.1
done
[[ "$url" == http://* ]] || { echo "error: the test server printed no URL within 10 s" >&2; exit 1; }

cd "$here"
# `install` runs the tests, then puts the jar into the local Maven repository for the example.
# shellcheck disable=SC2086
mvn -B ${MVN_ARGS:-} install -Dhublink.libdir="$target/debug" -Dhublink.testserver="$url"
echo "kotlin: binding tests took $(( $(date +%s) - start )) s"

# The Kotlin chat example (examples/kotlin-chat) against its own test server: the same chat as
# scripts/demo.sh, judged by its output (the order of the lines within a block may vary).
out="$(HUBLINK_TESTSERVER="$target/debug/hublink-testserver" "$root/examples/kotlin-chat/run.sh")"
printf '%s\n' "$out"
expected=(
  "alice connected over WebSockets with Json"
  "bob connected over WebSockets with MessagePack"
  "carol connected over WebSockets with Json"
  "  alice received: carol: hello kotliners"
  "  bob received: carol: hello kotliners"
  "  alice received: bob: hi all"
  "  bob received: bob: hi all"
  "  carol received: bob: hi all"
  "  alice got item 0"
  "  alice got item 4"
  "  the server got back: carol is happy"
  "all clients stopped; demo finished"
)
for line in "${expected[@]}"; do
  grep -qF -- "$line" <<<"$out" || { echo "error: the Kotlin chat did not print '$line'" >&2; exit 1; }
done
if grep -qF "carol received: carol:" <<<"$out"; then
  echo "error: carol, not in the group, received its message" >&2
  exit 1
fi
[ "$(grep -c "alice got item" <<<"$out")" = 5 ] || { echo "error: the countdown did not have 5 items" >&2; exit 1; }
echo "kotlin: the chat example printed what the Rust demo does"
echo "kotlin: run-tests.sh took $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Runs every test of the repository. This is the README's test command and what CI runs.
# It installs what the tests need (rustup components and targets, npm packages, the Go
# module) and exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# On CI a build is made once: incremental caches only cost disk (about 6 GB).
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi

# Each step's wall time is printed when the next begins, and all of them at the end (the
# README's test section lists them, so growth shows).
timings=()
current=""
started=$SECONDS
step() {
  finish_step
  current="$*"
  started=$SECONDS
  printf '\n=== %s\n' "$*"
}
finish_step() {
  if [ -n "$current" ]; then
    timings+=("$(printf '%5d s  %s' "$((SECONDS - started))" "$current")")
  fi
}

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# A real forward proxy for core/tests/proxy*.rs (and the Python and Kotlin proxy tests): the
# binary alone, no service. Those tests fail without it, they do not skip.
if ! command -v tinyproxy >/dev/null; then
  scripts/apt-install.sh tinyproxy-bin
fi
# A real Redis and HAProxy for the scaled-out testbed (scripts/testbed.sh, core/tests/scale_out.rs):
# the tests start their own on free ports. They fail without them, they do not skip.
if ! command -v redis-server >/dev/null || ! command -v haproxy >/dev/null; then
  scripts/apt-install.sh redis-server haproxy
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "distributed tracing (feature opentelemetry): spans and traceparent in invocation headers"
cargo clippy -p hublink --features opentelemetry --all-targets -- -D warnings
cargo test -p hublink --features opentelemetry --test distributed_tracing

step "a 1 000 000-item stream read slowly stays in bounded memory (release: in debug the client is the slow side)"
cargo test --release -p hublink --test stream_memory

step "rustdoc builds without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc -p hublink --no-deps --quiet
RUSTDOCFLAGS="-D warnings" cargo doc -p hublink-proto --no-deps --quiet

step "public API snapshot (core/public-api.txt, core/proto/public-api.txt)"
scripts/public-api.sh --check

step "core compiles for the browser (wasm32-unknown-unknown)"
cargo check -p hublink --target wasm32-unknown-unknown
cargo check -p hublink-proto --target wasm32-unknown-unknown

step "byte vectors agree with the official @microsoft/signalr packages"
scripts/check-vectors.sh

step "the demo (README's first command)"
scripts/demo.sh

step "the official @microsoft/signalr client judges the in-repo test server"
tests/js-reference/run-testserver-suite.sh

step "the official client under the same injected faults (tests/js-reference/faults.test.mjs)"
tests/js-reference/run-faults-suite.sh

step "the official client against the third-party Go server"
tests/go-server/run-smoke.sh

step "the Python package: wheel, pytest against the test server, stubs, mypy, ruff"
python/run-tests.sh

step "the Python wheel for manylinux2014 (zig, auditwheel show) and the sdist built alone"
python/check-wheel.sh

step "the browser package: wasm build, headless Chromium on every transport × protocol"
HUBLINK_WASM_OFFICIAL=1 HUBLINK_WASM_SIZE=1 wasm/run-tests.sh

step "the Kotlin binding (uniffi + Maven): JUnit 5 against the test server"
bindings/kotlin/run-tests.sh

step "the Swift binding (uniffi, no Swift compiler here): gen/ fresh, C header, checksums, syntax"
bindings/swift/check.sh

step "scenario coverage (tests/scenarios)"
scripts/scenarios.sh

if [ -x scripts/fuzz-smoke.sh ]; then
  step "a short fuzzing run of every decoder"
  scripts/fuzz-smoke.sh
fi

finish_step
printf '\ndisk used by target/: %s\n' "$(du -sh target 2>/dev/null | cut -f1)"
printf '\nstep times:\n'
printf '%s\n' "${timings[@]}"
printf 'total: %d s\n' "$SECONDS"
printf '\nall tests passed\n'

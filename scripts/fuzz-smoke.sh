#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a short time (FUZZ_SECONDS, default 20) and exits
# non-zero on the first crash, leak, timeout or out-of-memory. Each run first replays the
# committed corpus (fuzz/corpus/<target>/) and the seeds; what it finds goes to a temporary
# folder, so the committed corpus is left as it is. Longer runs: fuzz/README.md.
#
# cargo-fuzz needs a nightly compiler (sanitizer flags). The script uses the installed nightly
# toolchain, else tries to install one, else runs the default (stable) compiler with
# RUSTC_BOOTSTRAP=1; FUZZ_TOOLCHAIN=stable forces the last.
# cargo-fuzz itself is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
targets=(json_messages msgpack_messages handshake_response negotiate_response
  sse_event_stream message_stream driver)
if [ "$#" -gt 0 ]; then
  targets=("$@")
fi

toolchain=()
if [ "${FUZZ_TOOLCHAIN:-}" = stable ]; then
  echo "fuzz-smoke: FUZZ_TOOLCHAIN=stable: using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
elif rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
elif rustup toolchain install nightly --profile minimal >/dev/null 2>&1 &&
  rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  echo "fuzz-smoke: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
echo "fuzz-smoke: $(cargo "${toolchain[@]}" --version), $(cargo fuzz --version)"
for target in "${targets[@]}"; do
  if ! cargo "${toolchain[@]}" fuzz build "$target" >/dev/null 2>&1; then
    cargo "${toolchain[@]}" fuzz build "$target" # again, to show why
    echo "fuzz-smoke: building $target failed" >&2
    exit 1
  fi
done

status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  found="$(mktemp -d)"
  echo "fuzz-smoke: $target for ${seconds}s"
  if cargo "${toolchain[@]}" fuzz run "$target" "$found" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^Done [0-9]+ runs|stat::number_of_executed_units' "$log" | sed 's/^/  /'
  else
    status=1
    echo "fuzz-smoke: $target FAILED" >&2
    grep -E -A2 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -n 40 >&2
    grep -E 'Test unit written|^0x|Base64:' "$log" | head -n 5 >&2
  fi
  rm -rf "$log" "$found"
done
if [ "$status" -ne 0 ]; then
  echo "fuzz-smoke: crash inputs are in fuzz/artifacts/<target>/" >&2
fi
exit "$status"

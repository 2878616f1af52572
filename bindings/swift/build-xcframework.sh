#!/usr/bin/env bash
# macOS only (Xcode command-line tools + rustup): builds hublink-ffi as a static library for
# iOS devices, the iOS simulator and macOS, and packs it with the generated C header into
# build/hublink_ffiFFI.xcframework, the binary target of Package.swift.
#
# Not run on the team's Linux machines (no Apple SDK there); written for a Mac:
#   bindings/swift/build-xcframework.sh && swift build --package-path bindings/swift
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
[ "$(uname -s)" = Darwin ] || { echo "error: build-xcframework.sh needs macOS and Xcode" >&2; exit 1; }

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
cd "$root"
for t in "${targets[@]}"; do
  cargo build -p hublink-ffi --release --lib --target "$t"
done

build="$here/build"
rm -rf "$build"
mkdir -p "$build/headers" "$build/ios-sim" "$build/macos"
# The C module: the generated header with its modulemap under the name clang looks for.
cp "$here/gen/hublink_ffiFFI.h" "$build/headers/"
cp "$here/gen/hublink_ffiFFI.modulemap" "$build/headers/module.modulemap"
lib=libhublink_ffi.a
lipo -create "$target/aarch64-apple-ios-sim/release/$lib" "$target/x86_64-apple-ios/release/$lib" \
  -output "$build/ios-sim/$lib"
lipo -create "$target/aarch64-apple-darwin/release/$lib" "$target/x86_64-apple-darwin/release/$lib" \
  -output "$build/macos/$lib"
xcodebuild -create-xcframework \
  -library "$target/aarch64-apple-ios/release/$lib" -headers "$build/headers" \
  -library "$build/ios-sim/$lib" -headers "$build/headers" \
  -library "$build/macos/$lib" -headers "$build/headers" \
  -output "$build/hublink_ffiFFI.xcframework"
echo "built $build/hublink_ffiFFI.xcframework"

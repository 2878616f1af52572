#!/usr/bin/env bash
# What can be checked of the Swift binding without a Swift compiler (none on the team's Linux
# machines):
#   1. gen/ is fresh: the Swift, C header and modulemap regenerated from the built hublink-ffi
#      library are identical to the committed ones;
#   2. the C header compiles with gcc (clang's nullability qualifiers defined away);
#   3. the header agrees with the library: a C program made from the generated Swift's own
#      load-time checks (contract version and every API checksum) links against
#      libhublink_ffi and finds them all equal; every symbol the header declares is exported;
#   4. every Swift file (generated, the Hublink layer, Package.swift) parses with
#      tree-sitter-swift (pip, in a venv under the cargo target directory), with an allow-list
#      for the grammar's known false positives (parse_swift.py). Not a type check.
# Needs: cargo, gcc, nm, python3 with venv. Regenerate gen/ after an API change with
#   bindings/swift/check.sh --write
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
start=$(date +%s)
cd "$root"

# The same package set as kotlin/run-tests.sh: cargo unifies features per build, so this
# reuses its artifacts instead of rebuilding the dependencies.
cargo build -p hublink-ffi -p hublink-testserver
lib="$target/debug/libhublink_ffi.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Freshness.
"$target/debug/uniffi-bindgen" generate "$lib" --language swift --out-dir "$work/gen" --no-format >/dev/null
if [ "${1:-}" = "--write" ]; then
  rm -rf "$here/gen" && cp -r "$work/gen" "$here/gen"
  echo "wrote $here/gen"
fi
diff -ru "$here/gen" "$work/gen" || { echo "error: bindings/swift/gen is stale: run bindings/swift/check.sh --write" >&2; exit 1; }
echo "swift: gen/ is fresh"

# 2. The header compiles.
header="$here/gen/hublink_ffiFFI.h"
echo "#include \"$header\"" | gcc -fsyntax-only -Wall -Werror -D_Nullable= -D_Nonnull= -x c -
echo "swift: the C header compiles"

# 3. The Swift file's load-time checks, as C, against the library.
swift="$here/gen/HublinkFFI.swift"
{
  echo '#include <stdio.h>'
  echo "#include \"$header\""
  echo 'int main(void) {'
  echo '  int bad = 0, checked = 0;'
  version=$(sed -n 's/^ *let bindings_contract_version = \([0-9]*\)$/\1/p' "$swift")
  [ -n "$version" ] || { echo "error: no contract version in $swift" >&2; exit 1; }
  echo "  if (ffi_hublink_ffi_uniffi_contract_version() != $version) { puts(\"contract version differs\"); bad++; }"
  sed -n 's/^ *if (\(uniffi_hublink_ffi_checksum_[a-z0-9_]*\)() != \([0-9]*\)) {$/\1 \2/p' "$swift" |
    while read -r fn sum; do
      echo "  checked++; if ($fn() != $sum) { puts(\"$fn differs\"); bad++; }"
    done
  echo '  printf("%d checksums + contract version checked, %d bad\n", checked, bad);'
  echo '  return bad != 0 || checked == 0;'
  echo '}'
} >"$work/checks.c"
gcc -D_Nullable= -D_Nonnull= -o "$work/checks" "$work/checks.c" -L"$(dirname "$lib")" -lhublink_ffi
LD_LIBRARY_PATH="$(dirname "$lib")" "$work/checks"
grep -oE '\b(uniffi|ffi)_hublink_ffi_[a-z0-9_]+' "$header" | sort -u >"$work/declared"
nm -D --defined-only "$lib" | awk '{print $3}' | grep -E '^(uniffi|ffi)_hublink_ffi_' | sort -u >"$work/exported"
missing=$(comm -23 "$work/declared" "$work/exported")
[ -z "$missing" ] || { echo "error: declared in the header, not exported: $missing" >&2; exit 1; }
echo "swift: $(wc -l <"$work/declared") header symbols, all exported by the library"

# 4. Swift syntax.
venv="$target/swift-check-venv"
if ! "$venv/bin/python" -c 'import tree_sitter, tree_sitter_swift' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tree-sitter==0.26.1 tree-sitter-swift==0.7.4
fi
"$venv/bin/python" "$here/parse_swift.py" "$swift" "$here"/Sources/Hublink/*.swift "$here/Package.swift"
echo "swift: check.sh took $(( $(date +%s) - start )) s"

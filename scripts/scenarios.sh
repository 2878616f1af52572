#!/usr/bin/env bash
# Scenario coverage: which test suite (file) covers which scenario of tests/scenarios/scenarios.txt.
#
# tests/scenarios/scenarios.txt is the single list of behaviour names: one per line,
# "name<TAB>description", sorted (byte order), names unique, name =
# <transport>.<protocol>.<area>.<case> with transport in ws|sse|lp|any and protocol in
# json|msgpack|any.
#
# A test source declares a scenario by either
#   - a test name (a string literal) starting with "[name]", e.g. it("[ws.json.invoke.echo] …")
#   - a comment "// scenario: name" or "# scenario: name" (several names: comma-separated).
# JS suites are loaded with a stubbed node:test to read their exact test names. Elsewhere a
# placeholder segment — "${…}" (JS template), "{…}" or "*" — matches a concrete transport,
# protocol or "transport.protocol" (never "any"); such a tag covers every listed name it
# matches and is unknown if it matches none.
#
# Scanned: tests/js-reference/*.test.mjs and every other *.test.{mjs,js,ts}, core/tests/*.rs,
# core/proto/tests/*.rs, tests/**/tests/*.rs and any other tests/ directory's *.rs,
# test_*.py / *_test.py, *_test.go, *.kt under a src/test/ directory (Maven's layout:
# bindings/kotlin/src/test/**)
# (node_modules, target and .git are skipped).
#
# Prints the coverage table, the names used in tests but missing from the list, and exits
# 1 if there are any (or if the list itself is malformed), 0 otherwise. Needs only bash + node.
#
# Usage: scripts/scenarios.sh [--uncovered]   (--uncovered also lists names no suite covers yet)
set -euo pipefail
cd "$(dirname "$0")/.."

list=tests/scenarios/scenarios.txt
[ -f "$list" ] || { echo "error: $list not found" >&2; exit 1; }

mapfile -t files < <(
  find . \( -name node_modules -o -name target -o -name .git \) -prune -o -type f \( \
      -name '*.test.mjs' -o -name '*.test.js' -o -name '*.test.ts' \
      -o -path '*/tests/*.rs' \
      -o -name 'test_*.py' -o -name '*_test.py' -o -name '*_test.go' \
      -o \( -path '*/src/test/*' -name '*.kt' \) \
    \) -print | sed 's|^\./||' | LC_ALL=C sort
)

# JS test files are also loaded once with node:test replaced by a stub that only records test
# names (bodies, hooks and servers never run), so that names built in loops are exact. If that
# fails (e.g. node_modules missing), the file is scanned statically like every other file.
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
cat > "$stub/stub.mjs" <<'JS'
import fs from "node:fs";
const names = [];
const t = (name) => { names.push(String(name)); };
export const test = t, it = t, only = t, skip = t, todo = t;
export const describe = (name, o, f) => { const fn = typeof o === "function" ? o : f; if (fn) fn(); };
export const suite = describe;
export const before = () => {}, after = () => {}, beforeEach = () => {}, afterEach = () => {};
export const mock = {};
export default t;
process.on("exit", () => fs.writeFileSync(process.env.SCENARIO_NAMES_OUT, JSON.stringify(names)));
JS
cat > "$stub/hooks.mjs" <<JS
export async function resolve(specifier, context, next) {
  if (specifier === "node:test" || specifier === "test") return { url: "file://$stub/stub.mjs", shortCircuit: true };
  return next(specifier, context);
}
JS
cat > "$stub/register.mjs" <<JS
import { register } from "node:module";
register("file://$stub/hooks.mjs");
JS
dynamic=()
for f in "${files[@]}"; do
  case "$f" in *.mjs|*.js) ;; *) continue ;; esac
  out="$stub/$(echo "$f" | tr '/' '_').json"
  if SCENARIO_NAMES_OUT="$out" timeout 30 node --import "$stub/register.mjs" "$f" >/dev/null 2>&1 && [ -s "$out" ]; then
    dynamic+=("$f=$out")
  else
    echo "note: could not load $f with a stubbed node:test; scanning it statically" >&2
  fi
done

DYNAMIC="$(printf '%s\n' "${dynamic[@]}")" node - "$list" "${1:-}" "${files[@]}" <<'NODE'
const fs = require("fs");
const [, , listPath, flag, ...files] = process.argv;

// ---- the list -----------------------------------------------------------------------
const NAME = /^(ws|sse|lp|any)\.(json|msgpack|any)\.[a-z0-9-]+\.[a-z0-9-]+$/;
const listErrors = [];
const names = [];
fs.readFileSync(listPath, "utf8").split("\n").forEach((line, i) => {
  if (line === "") return;
  const tab = line.indexOf("\t");
  const name = tab < 0 ? line : line.slice(0, tab);
  if (tab < 0 || line.slice(tab + 1).trim() === "") listErrors.push(`${listPath}:${i + 1}: expected "name<TAB>description"`);
  if (!NAME.test(name)) listErrors.push(`${listPath}:${i + 1}: malformed name "${name}"`);
  names.push(name);
});
names.forEach((n, i) => {
  if (i > 0 && !(names[i - 1] < n)) listErrors.push(`${listPath}: "${n}" is ${names[i - 1] === n ? "a duplicate" : "out of order"} (after "${names[i - 1]}")`);
});
const known = new Set(names);

// ---- the tags -----------------------------------------------------------------------
const SEG = String.raw`(?:\$\{[^}]*\}|\{[^}]*\}|\*|[a-z0-9-]+)`;
const TAG = String.raw`${SEG}(?:\.${SEG}){2,}`;
const inName = new RegExp(String.raw`["'\x60]\[(${TAG})\]`, "g");
const inComment = new RegExp(String.raw`(?://|#)\s*scenario:\s*(${TAG}(?:\s*,\s*${TAG})*)`, "g");
const isPlaceholder = (s) => s === "*" || /^\$?\{[^}]*\}$/.test(s);

function expand(tag) {
  const segs = tag.split(/\.(?![^{]*\})/);
  if (!segs.some(isPlaceholder)) return known.has(tag) ? [tag] : [];
  const re = new RegExp("^" + segs.map((s) => (isPlaceholder(s) ? "(?:ws|sse|lp|json|msgpack)(?:\\.(?:json|msgpack))?" : s.replace(/[-]/g, "\\-"))).join("\\.") + "$");
  return names.filter((n) => re.test(n));
}

const coveredBy = new Map(names.map((n) => [n, new Set()]));
const unknown = []; // { tag, where }
const suites = [];
const dynamic = new Map((process.env.DYNAMIC || "").split("\n").filter(Boolean).map((l) => {
  const i = l.lastIndexOf("=");
  return [l.slice(0, i), l.slice(i + 1)];
}));
const exactTag = new RegExp(String.raw`^\[([a-z0-9-]+(?:\.[a-z0-9-]+){3,})\]`);
for (const file of files) {
  const text = fs.readFileSync(file, "utf8");
  const tags = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (!dynamic.has(file)) for (const m of line.matchAll(inName)) tags.push({ tag: m[1], line: i + 1 });
    for (const m of line.matchAll(inComment)) for (const t of m[1].split(/\s*,\s*/)) tags.push({ tag: t, line: i + 1 });
  });
  if (dynamic.has(file)) {
    for (const testName of JSON.parse(fs.readFileSync(dynamic.get(file), "utf8"))) {
      const m = exactTag.exec(testName);
      if (m) tags.push({ tag: m[1], line: `test "${testName.slice(0, 60)}"` });
    }
  }
  if (tags.length === 0) continue;
  suites.push(file);
  for (const { tag, line } of tags) {
    const hits = expand(tag);
    if (hits.length === 0) unknown.push({ tag, where: `${file}:${line}` });
    for (const h of hits) coveredBy.get(h).add(file);
  }
}

// ---- report -------------------------------------------------------------------------
const short = new Map(suites.map((f, i) => [f, String.fromCharCode(65 + (i % 26)) + (i >= 26 ? Math.floor(i / 26) : "")]));
console.log("suites:");
for (const f of suites) console.log(`  ${short.get(f)}  ${f}`);
console.log("");
const width = Math.max(...names.map((n) => n.length), 8);
console.log(`${"scenario".padEnd(width)}  ${suites.map((f) => short.get(f)).join(" ")}`);
let covered = 0;
for (const n of names) {
  const by = coveredBy.get(n);
  if (by.size) covered++;
  console.log(`${n.padEnd(width)}  ${suites.map((f) => (by.has(f) ? "x" : ".").padEnd(short.get(f).length)).join(" ")}`);
}
console.log("");
console.log(`${names.length} scenarios listed, ${covered} covered by at least one suite, ${names.length - covered} not yet covered.`);
if (flag === "--uncovered") {
  console.log("\nnot covered yet:");
  for (const n of names) if (coveredBy.get(n).size === 0) console.log(`  ${n}`);
}
for (const e of listErrors) console.log(`LIST ERROR: ${e}`);
if (unknown.length) {
  console.log(`\nMISSING from ${listPath} (used in tests, not listed):`);
  for (const { tag, where } of unknown) console.log(`  ${tag}    (${where})`);
}
process.exit(listErrors.length || unknown.length ? 1 : 0);
NODE

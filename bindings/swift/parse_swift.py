"""Parses Swift files with tree-sitter-swift and reports syntax errors (a smoke check, not a
type check). Known false positives of the grammar (0.7.4) are allowed by the text they span."""

import sys

import tree_sitter_swift
from tree_sitter import Language, Parser

# Text of the error/missing nodes the grammar reports on valid Swift.
ALLOWED = (
    "@_documentation(visibility: private)",  # an underscored attribute it does not know
    "let writeReturn = { () }",  # an empty-tuple closure body
)


def problems(path: str) -> list[str]:
    source = open(path, "rb").read()
    tree = Parser(Language(tree_sitter_swift.language())).parse(source)
    lines = source.split(b"\n")
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row = node.start_point[0]
            line = lines[row].decode(errors="replace") if row < len(lines) else ""
            if not any(allowed in line for allowed in ALLOWED):
                kind = "missing" if node.is_missing else "error"
                found.append(f"{path}:{row + 1}:{node.start_point[1] + 1}: {kind}: {line.strip()}")
            continue
        if node.has_error:
            stack.extend(node.children)
    return found


def main() -> int:
    bad = [p for path in sys.argv[1:] for p in problems(path)]
    for line in bad:
        print(line)
    print(f"swift syntax: {len(sys.argv) - 1} files parsed, {len(bad)} unexpected errors")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

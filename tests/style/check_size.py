#!/usr/bin/env python3
"""Files under 800 lines and functions under 80 (STYLE: a file past ~800 lines asks to be
split along a seam; specs/architecture.md). Tables are data, not functions, and do not
count. Prints each offence as FILE:LINE and exits 1 when there is one.

usage: check_size.py SOURCE_ROOT"""
import os, re, sys

MAX_FILE, MAX_FUNCTION = 800, 80


def functions(text):
    """(name, first line, lines) of every function body at file scope."""
    s = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    s = re.sub(r"//[^\n]*", "", s)
    s = re.sub(r'"(\\.|[^"\\\n])*"', '""', s)
    s = re.sub(r"'(\\.|[^'\\\n])*'", "''", s)
    depth, line, head, start, name = 0, 1, "", None, None
    for ch in s:
        if ch == "\n":
            line += 1
        if depth == 0:
            if ch == "{":
                m = re.search(r"([A-Za-z_]\w*)\s*\([^;=]*\)\s*(__attribute__\s*\(\(.*\)\)\s*)?$", head, re.S)
                start, name = (line, m.group(1)) if m and "=" not in head else (None, None)
                depth, head = 1, ""
            elif ch in ";}":
                head = ""
            else:
                head += ch
        else:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    if start:
                        yield name, start, line - start + 1
                    start, head = None, ""


def main():
    root = sys.argv[1]
    bad = []
    for d in ("src", "include"):
        for dirpath, _, names in os.walk(os.path.join(root, d)):
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, n)
                rel = os.path.relpath(path, root)
                text = open(path, encoding="utf-8").read()
                lines = text.count("\n")
                if lines > MAX_FILE:
                    bad.append(f"{rel}:1: {lines} lines (at most {MAX_FILE}): split it along a seam")
                for name, first, length in functions(text):
                    if length > MAX_FUNCTION:
                        bad.append(f"{rel}:{first}: {name} is {length} lines (at most {MAX_FUNCTION})")
    for b in bad:
        print(b)
    if bad:
        return 1
    print(f"sizes: every file under {MAX_FILE} lines, every function under {MAX_FUNCTION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Report C functions longer than a limit.

usage: function_length.py [--max N] [--list] FILE.c|FILE.h|DIR...

A function's length counts its lines from the first line of its signature
to its closing brace, both included. Comments, string and character
literals and preprocessor lines are ignored when looking for braces; a
function is a brace at file level whose heading ends with ')' and holds no
'=' (so struct bodies and initialisers are not counted).

Exit status: 0 when every function is within --max (default 60), 1 when one
is longer or when no function was found at all (the parser is then broken),
2 on a bad command line.
"""
import argparse
import os
import re
import sys

IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*\(")


def blank(text, start, end):
    """text[start:end] with everything but newlines turned into spaces."""
    return re.sub(r"[^\n]", " ", text[start:end])


def strip_code(text):
    """The text with comments, literals and preprocessor lines blanked,
    every newline kept so that positions map to the same lines."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            j = i
            while j < n and text[j] != "\n":
                j = j + 2 if text.startswith("\\\n", j) else j + 1
            out.append(blank(text, i, j))
            i = j
            continue
        line_start = c == "\n"
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            out.append(c)
            i += 1
            continue
        out.append(blank(text, i, min(j, n)))
        i = min(j, n)
    return "".join(out)


def matching_brace(code, at):
    depth = 0
    for k in range(at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1


def functions(path):
    """(name, first line, length) of every function defined in the file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        code = strip_code(f.read())
    found = []
    heading_start = 0
    k = 0
    while k < len(code):
        c = code[k]
        if c == ";":
            heading_start = k + 1
        elif c == "{":
            close = matching_brace(code, k)
            heading = code[heading_start:k].strip()
            call = IDENT_BEFORE_PAREN.search(heading)
            if heading.endswith(")") and "=" not in heading and call:
                first = heading_start + len(code[heading_start:k]) - len(code[heading_start:k].lstrip())
                line = code.count("\n", 0, first) + 1
                found.append((call.group(1), line, code.count("\n", first, close) + 1))
            heading_start = close + 1
            k = close
        k += 1
    return found


def sources(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if name.endswith((".c", ".h")):
                    yield os.path.join(p, name)
        else:
            yield p


def main():
    ap = argparse.ArgumentParser(description="Report C functions longer than a limit.")
    ap.add_argument("--max", type=int, default=60, help="longest allowed function, in lines")
    ap.add_argument("--list", action="store_true", help="print every function, longest first")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    every = []
    for path in sources(args.paths):
        every += [(length, path, line, name) for name, line, length in functions(path)]
    every.sort(key=lambda f: (-f[0], f[1], f[2]))
    too_long = [f for f in every if f[0] > args.max]
    for length, path, line, name in every if args.list else too_long:
        print("%s:%d: %s: %d lines" % (path, line, name, length))
    if not every:
        print("no function found in %s" % " ".join(args.paths))
        return 1
    print("%d functions, the longest %d lines (%s), %d over %d lines"
          % (len(every), every[0][0], every[0][3], len(too_long), args.max))
    return 1 if too_long else 0


if __name__ == "__main__":
    sys.exit(main())

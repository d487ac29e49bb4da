#!/usr/bin/env python3
"""Prints English-like lines from this machine's gzipped documentation (/usr/share/doc): real text
for tokenizer benchmarks, with no download. Keeps lines of 3-40 words, each once, in a fixed order.
Usage: scripts/doc-text.py MAX_LINES > out.txt"""
import gzip
import pathlib
import sys

limit = int(sys.argv[1])
seen = set()
for path in sorted(pathlib.Path("/usr/share/doc").rglob("*.gz")):
    try:
        text = gzip.open(path, "rt", encoding="utf-8", errors="replace").read()
    except (OSError, EOFError):
        continue
    for line in text.split("\n"):
        line = " ".join(line.replace("\t", " ").split()).lstrip("*-+ ")
        if 3 <= len(line.split()) <= 40 and line not in seen:
            seen.add(line)
            print(line)
            if len(seen) >= limit:
                sys.exit(0)

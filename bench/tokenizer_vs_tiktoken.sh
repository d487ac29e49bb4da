#!/usr/bin/env bash
# Encodes the same 50 MB of text with our tokenizer and with tiktoken (npm, under Node.js), one
# thread each, in one run; prints MB/s for both and the ratio. Both use GPT-2's vocabulary.
# The text: English lines from this machine's documentation (scripts/doc-text.py) with every fifth
# line from the multilingual reference corpus (tests/data/bpe/corpus.txt), cut to 50 MB.
# Usage: bench/tokenizer_vs_tiktoken.sh [BUILD_DIR]   (needs node and npm; installs tiktoken
# into scripts/bpe-reference/node_modules on first use)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
work="$build/bench-tokenizer"
mkdir -p "$work"
text="$work/text-50mb.txt"
if [[ ! -s $text ]]; then
  python3 "$root/scripts/doc-text.py" 1500000 > "$work/doc-text.txt"
  python3 - "$work/doc-text.txt" "$root/tests/data/bpe/corpus.txt" "$text" <<'PY'
import sys
english = open(sys.argv[1], encoding="utf-8", errors="replace").read().split("\n")
mixed = open(sys.argv[2], encoding="utf-8", newline="\n").read().split("\n")[:-1]
out, size, i = [], 0, 0
while size < 50_000_000:
    line = english[i % len(english)] if i % 5 else mixed[(i // 5) % len(mixed)]
    out.append(line); size += len(line.encode()) + 1; i += 1
open(sys.argv[3], "w", encoding="utf-8", newline="\n").write("\n".join(out) + "\n")
PY
fi
ref="$root/scripts/bpe-reference"
[[ -d $ref/node_modules/tiktoken ]] || (cd "$ref" && npm install --no-audit --no-fund >/dev/null)
ours=$(OMP_NUM_THREADS=1 "$build/bin/bench_tokenizer" "$text" "$root/tests/data/bpe/gpt2")
theirs=$(node "$ref/bench-tiktoken.mjs" "$text")
echo "$ours"
echo "$theirs"
a=$(awk '{print $2}' <<< "$ours"); b=$(awk '{print $2}' <<< "$theirs")
ids_a=$(grep -o '[0-9]* ids' <<< "$ours"); ids_b=$(grep -o '[0-9]* ids' <<< "$theirs")
[[ "$ids_a" == "$ids_b" ]] || echo "warning: different id counts ($ids_a vs $ids_b)"
awk -v a="$a" -v b="$b" 'BEGIN {printf "ratio      %8.2fx  (dalle.cpp / tiktoken)\n", a / b}'

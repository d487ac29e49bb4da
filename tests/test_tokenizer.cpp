// Byte-level BPE: GPT-2 pre-tokenization, exact ids against tiktoken's GPT-2 on a 12,000-line
// corpus (tests/data/bpe, made by scripts/bpe-reference), the three file formats, dropout,
// training, and hostile input.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "dalle/text/byte_level.h"
#include "dalle/text/pretokenize.h"
#include "dalle/text/tokenizer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_paths.h"
#include "test_util.h"

namespace dalle {
namespace {

const std::string kBpeData = std::string(DALLE_TEST_DATA_DIR) + "/bpe";

// Lines split on '\n' only: the corpus keeps its '\r', tabs and other whitespace.
std::vector<std::string> read_lines(const std::string& path) {
  const std::string text = read_file_text(path);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  return lines;
}

std::vector<int> parse_ids(const std::string& line) {
  std::vector<int> ids;
  std::istringstream in(line);
  for (int id; in >> id;) ids.push_back(id);
  return ids;
}

std::vector<std::string> pieces(const std::string& text) {
  std::vector<TextSpan> spans;
  pretokenize_gpt2(text, spans);
  std::vector<std::string> out;
  for (const auto& s : spans) out.push_back(text.substr(s.begin, s.length));
  return out;
}

const Tokenizer& gpt2() {
  static const Tokenizer tok = Tokenizer::load(kBpeData + "/gpt2");
  return tok;
}

// Compares ids line by line and reports the first few differences.
void expect_reference_ids(const Tokenizer& tok, size_t max_lines = SIZE_MAX) {
  const auto corpus = read_lines(kBpeData + "/corpus.txt");
  const auto expected = read_lines(kBpeData + "/gpt2-ids.txt");
  ASSERT_EQ(corpus.size(), expected.size());
  ASSERT_GE(corpus.size(), 10000u);
  size_t wrong = 0, checked = 0;
  for (size_t i = 0; i < corpus.size() && i < max_lines; ++i, ++checked) {
    const auto ids = tok.encode(corpus[i]);
    if (ids != parse_ids(expected[i]) && ++wrong <= 5)
      ADD_FAILURE() << "line " << i + 1 << " differs: '" << corpus[i] << "'";
    if (tok.decode(ids) != corpus[i] && ++wrong <= 5) ADD_FAILURE() << "line " << i + 1 << " does not round-trip";
  }
  EXPECT_EQ(wrong, 0u) << "of " << checked << " lines";
}

TEST(Tokenizer, PreTokenizerFollowsGpt2Pattern) {
  EXPECT_EQ(pieces("Hello world's end"), (std::vector<std::string>{"Hello", " world", "'s", " end"}));
  EXPECT_EQ(pieces("I'M don't we'll"), (std::vector<std::string>{"I", "'", "M", " don", "'t", " we", "'ll"}));
  EXPECT_EQ(pieces("a  b"), (std::vector<std::string>{"a", " ", " b"}));        // last space joins the word
  EXPECT_EQ(pieces("a\t\tb"), (std::vector<std::string>{"a", "\t", "\t", "b"}));
  EXPECT_EQ(pieces("x   "), (std::vector<std::string>{"x", "   "}));            // trailing run stays whole
  EXPECT_EQ(pieces("abc123 45!?"), (std::vector<std::string>{"abc", "123", " 45", "!?"}));
  EXPECT_EQ(pieces(" !'s"), (std::vector<std::string>{" !'", "s"}));
  EXPECT_EQ(pieces("naïve café"), (std::vector<std::string>{"naïve", " café"}));
  EXPECT_EQ(pieces("e\xCC\x81"), (std::vector<std::string>{"e", "\xCC\x81"}));  // combining mark: not a letter
  EXPECT_EQ(pieces("a\xC2\x85" "b"), (std::vector<std::string>{"a", "\xC2\x85", "b"}));  // NEL is White_Space
  EXPECT_EQ(pieces(""), std::vector<std::string>{});
}

TEST(Tokenizer, Gpt2FolderMatchesTiktokenOnTheReferenceCorpus) { expect_reference_ids(gpt2()); }

TEST(Tokenizer, HuggingFaceTokenizerJsonMatchesTiktoken) {
  const Tokenizer hf = Tokenizer::load(kBpeData + "/hf-gpt2/tokenizer.json");
  EXPECT_EQ(hf.vocab_size(), 50257);
  EXPECT_EQ(hf.special_id("<|endoftext|>"), 50256);
  expect_reference_ids(hf, 3000);
}

TEST(Tokenizer, OwnJsonRoundTripKeepsEveryId) {
  const auto dir = test::scratch_dir("tok_json");
  const std::string path = (dir / "gpt2.json").string();
  gpt2().save(path);
  const Tokenizer again = Tokenizer::load(path);
  EXPECT_EQ(again.vocab_size(), gpt2().vocab_size());
  EXPECT_EQ(again.spec().vocab.merges, gpt2().spec().vocab.merges);
  expect_reference_ids(again, 3000);
}

TEST(Tokenizer, ByteLevelAlphabetIsReversible) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(byte_level_encode(" "), "\xC4\xA0");  // 'Ġ'
  EXPECT_EQ(byte_level_decode(byte_level_encode(all)).value(), all);
  EXPECT_FALSE(byte_level_decode("\xE2\x82\xAC").has_value());  // '€' is not in the alphabet
}

TEST(Tokenizer, EveryByteStringEncodesAndDecodesExactly) {
  const std::vector<std::string> hostile = {
      std::string("\xFF\xFE\x80 bad \xC3", 10), std::string("nul\0inside\0", 11), "", "\xED\xA0\x80 surrogate",
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB cut \xF0\x9F", "\t\t\r\n  \n"};
  for (const std::string& s : hostile) EXPECT_EQ(gpt2().decode(gpt2().encode(s)), s);
  EXPECT_TRUE(gpt2().encode("").empty());
  EXPECT_THROW(gpt2().decode({50257}), Error);
}

TEST(Tokenizer, TenMegabyteLineWithoutSpacesIsNotQuadratic) {
  std::string line;
  line.reserve(10 << 20);
  uint32_t x = 1;
  while (line.size() < (10u << 20)) {
    x = x * 1664525u + 1013904223u;
    line += static_cast<char>('a' + (x >> 24) % 26);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = gpt2().encode(line);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ids.size(), line.size() * 2 / 3);  // merges did happen
  EXPECT_EQ(gpt2().decode(ids), line);
  EXPECT_LT(seconds, 30.0) << "a quadratic merge loop takes hours here";
  std::printf("10 MB single-word line: %.2f s, %zu ids\n", seconds, ids.size());
}

TEST(Tokenizer, DropoutZeroIsPlainAndPositiveKeepsTextAtTheRequestedRate) {
  const auto corpus = read_lines(kBpeData + "/corpus.txt");
  std::mt19937_64 rng(7);
  DropoutStats stats;
  size_t changed = 0;
  for (size_t i = 0; i < 2000; ++i) {
    EXPECT_EQ(gpt2().encode(corpus[i], 0.0, rng), gpt2().encode(corpus[i]));
    const auto ids = gpt2().encode(corpus[i], 0.1, rng, &stats);
    EXPECT_EQ(gpt2().decode(ids), corpus[i]);
    changed += ids != gpt2().encode(corpus[i]);
  }
  const double rate = static_cast<double>(stats.skipped) / static_cast<double>(stats.skipped + stats.applied);
  std::printf("dropout 0.1: skipped %lld of %lld merge draws (%.4f); %zu of 2000 lines changed\n",
              static_cast<long long>(stats.skipped), static_cast<long long>(stats.skipped + stats.applied), rate,
              changed);
  EXPECT_GT(stats.applied, 20000);
  EXPECT_NEAR(rate, 0.1, 0.01);
  EXPECT_GT(changed, 200u);
  // Seeded: the same seed gives the same ids.
  std::mt19937_64 a(3), b(3);
  EXPECT_EQ(gpt2().encode(corpus[5], 0.5, a), gpt2().encode(corpus[5], 0.5, b));
}

TEST(Tokenizer, TrainingIsDeterministicLowercasesAndReachesTheTargetSize) {
  const auto corpus = read_lines(kBpeData + "/corpus.txt");
  TokenizerTrainOptions o;
  o.vocab_size = 1000;
  const Tokenizer a = Tokenizer::train(corpus, o);
  const Tokenizer b = Tokenizer::train(corpus, o);
  EXPECT_EQ(a.vocab_size(), 1000);
  EXPECT_EQ(a.spec().vocab.tokens, b.spec().vocab.tokens);
  EXPECT_EQ(a.special_id("<|endoftext|>"), 999);
  EXPECT_EQ(a.encode("A RED Apple"), a.encode("a red apple"));
  EXPECT_EQ(a.decode(a.encode("A RED Apple")), "a red apple");
  EXPECT_EQ(a.decode(a.encode("Cafe\xCC\x81")), "caf\xC3\xA9");  // NFC before lowercasing
  // The special token is reserved: its text encodes as ordinary bytes.
  for (int id : a.encode("<|endoftext|>")) EXPECT_NE(id, 999);
  // Frequent words become single tokens.
  EXPECT_EQ(a.encode(" the").size(), 1u);
  const auto dir = test::scratch_dir("tok_train");
  a.save((dir / "t.json").string());
  const Tokenizer c = Tokenizer::load((dir / "t.json").string());
  for (size_t i = 0; i < 500; ++i) EXPECT_EQ(c.encode(corpus[i]), a.encode(corpus[i]));
}

TEST(Tokenizer, TrainingStopsWhenNoPairRepeats) {
  TokenizerTrainOptions o;
  o.vocab_size = 5000;
  const Tokenizer t = Tokenizer::train({"a red circle", "a red square", "a blue circle"}, o);
  EXPECT_LT(t.vocab_size(), 5000);
  EXPECT_EQ(t.encode(" red").size(), 1u);
  TokenizerTrainOptions too_small;
  too_small.vocab_size = 100;  // fewer ids than bytes
  EXPECT_THROW(Tokenizer::train({"x"}, too_small), Error);
}

// Copies the GPT-2 folder with one file replaced by `text`.
std::string broken_gpt2(const std::string& name, const std::string& file, const std::string& text) {
  const auto dir = test::scratch_dir(name);
  for (const char* f : {"encoder.json", "vocab.bpe"})
    write_file_atomic((dir / f).string(), read_file_text(kBpeData + "/gpt2/" + f));
  write_file_atomic((dir / file).string(), text);
  return dir.string();
}

void expect_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    Tokenizer::load(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, BrokenVocabularyFilesNameTheFileAndLine) {
  const std::string merges = read_file_text(kBpeData + "/gpt2/vocab.bpe");
  const std::string encoder = read_file_text(kBpeData + "/gpt2/encoder.json");
  // Truncated mid-line: the last line has one token.
  size_t cut = 0;
  for (int i = 0; i < 1000; ++i) cut = merges.find('\n', cut) + 1;
  expect_error(broken_gpt2("tok_trunc", "vocab.bpe", merges.substr(0, cut + 2)), {"vocab.bpe", "line 1001"});
  // A merge that refers to an unknown token.
  expect_error(broken_gpt2("tok_unknown", "vocab.bpe", "#version: 0.2\nĠ t\nzzzq x\n"), {"vocab.bpe", "line 3", "zzzq"});
  // encoder.json cut short: not JSON.
  expect_error(broken_gpt2("tok_json", "encoder.json", encoder.substr(0, encoder.size() / 2)),
               {"encoder.json", "line 1", "not valid JSON"});
  // A byte missing from the vocabulary.
  const std::string no_bytes = broken_gpt2("tok_byte", "encoder.json", R"({"a": 0, "b": 1, "ab": 2})");
  write_file_atomic(no_bytes + "/vocab.bpe", "#version: 0.2\na b\n");
  expect_error(no_bytes, {"tok_byte", "byte 0x00 has no token"});
  // Not a tokenizer at all.
  const auto dir = test::scratch_dir("tok_other");
  write_file_atomic((dir / "x.json").string(), R"({"hello": 1})");
  expect_error((dir / "x.json").string(), {"x.json", "not a tokenizer"});
  expect_error((dir / "missing.json").string(), {"missing.json"});
}

}  // namespace
}  // namespace dalle

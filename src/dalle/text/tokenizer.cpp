#include "dalle/text/tokenizer.h"

#include <xxhash.h>

#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "dalle/text/pretokenize.h"
#include "dalle/text/tokenizer_files.h"
#include "dalle/text/unicode.h"
#include "dalle/util/error.h"

namespace dalle {

// Captions repeat their words: remembering the ids of short pieces makes encoding several times
// faster. Bounded; cleared when full.
struct Tokenizer::PieceCache {
  static constexpr size_t kMaxPiece = 32;
  static constexpr size_t kMaxEntries = 1 << 18;
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int>> ids;
};

Tokenizer::Tokenizer(TokenizerSpec spec)
    : spec_(std::move(spec)), bpe_(spec_.vocab), cache_(std::make_shared<PieceCache>()) {
  for (const std::string& s : spec_.special_tokens)
    if (bpe_.find(s) < 0) throw Error("special token '" + s + "' is not in the vocabulary");
}

Tokenizer Tokenizer::train(const std::vector<std::string>& corpus, const TokenizerTrainOptions& options) {
  const int specials = static_cast<int>(options.special_tokens.size());
  if (options.vocab_size < 256 + specials)
    throw Error("a byte-level BPE vocabulary needs at least " + std::to_string(256 + specials) +
                " ids (256 bytes + " + std::to_string(specials) + " special tokens); asked for " +
                std::to_string(options.vocab_size));
  BpeTrainOptions bpe = options.bpe;
  bpe.merges = options.vocab_size - 256 - specials;
  TokenizerSpec spec;
  spec.vocab = bpe_train(corpus, bpe);
  for (const std::string& s : options.special_tokens) spec.vocab.tokens.push_back(s);
  spec.special_tokens = options.special_tokens;
  spec.normalization = {bpe.nfc, bpe.lowercase};
  return Tokenizer(std::move(spec));
}

Tokenizer Tokenizer::load(const std::string& path) {
  TokenizerSpec spec = tokenizer_file_read(path);
  try {
    return Tokenizer(std::move(spec));
  } catch (const Error& e) {
    throw file_error(path, e.what());
  }
}

void Tokenizer::save(const std::string& path) const { tokenizer_file_write(path, spec_); }

std::string Tokenizer::fingerprint() const {
  // Every field as length-prefixed bytes, so no two different specs serialise alike.
  std::string bytes;
  auto put = [&](std::string_view field) {
    const uint64_t n = field.size();
    bytes.append(reinterpret_cast<const char*>(&n), sizeof(n));
    bytes.append(field);
  };
  for (const std::string& token : spec_.vocab.tokens) put(token);
  put("merges");
  for (const auto& [left, right] : spec_.vocab.merges) put(std::to_string(left) + " " + std::to_string(right));
  put("specials");
  for (const std::string& token : spec_.special_tokens) put(token);
  put(std::string("nfc=") + (spec_.normalization.nfc ? "1" : "0") + " lowercase=" +
      (spec_.normalization.lowercase ? "1" : "0") + " prefix_space=" + (spec_.add_prefix_space ? "1" : "0"));
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
}

std::string Tokenizer::prepare(std::string_view text) const {
  std::string s = (spec_.normalization.nfc || spec_.normalization.lowercase)
                      ? normalize_text(text, spec_.normalization.nfc, spec_.normalization.lowercase)
                      : std::string(text);
  if (spec_.add_prefix_space && !s.empty() && s[0] != ' ') s.insert(s.begin(), ' ');
  return s;
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  const std::string s = prepare(text);
  std::vector<TextSpan> spans;
  pretokenize_gpt2(s, spans);
  std::vector<int> out;
  out.reserve(s.size() / 3 + 1);
  PieceCache& cache = *cache_;
  for (const TextSpan& span : spans) {
    const std::string_view piece(s.data() + span.begin, span.length);
    if (piece.size() > PieceCache::kMaxPiece) {
      bpe_.encode_piece(piece, out);
      continue;
    }
    std::string key(piece);
    {
      std::lock_guard<std::mutex> lock(cache.mutex);
      const auto it = cache.ids.find(key);
      if (it != cache.ids.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    const size_t start = out.size();
    bpe_.encode_piece(piece, out);
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.ids.size() >= PieceCache::kMaxEntries) cache.ids.clear();
    cache.ids.emplace(std::move(key), std::vector<int>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
  }
  return out;
}

std::vector<int> Tokenizer::encode(std::string_view text, double dropout, std::mt19937_64& rng,
                                   DropoutStats* stats) const {
  if (dropout <= 0) return encode(text);
  const std::string s = prepare(text);
  std::vector<TextSpan> spans;
  pretokenize_gpt2(s, spans);
  std::vector<int> out;
  for (const TextSpan& span : spans)
    bpe_.encode_piece_dropout(std::string_view(s.data() + span.begin, span.length), dropout, rng, out, stats);
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= bpe_.size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(bpe_.size() - 1) + ")");
    out += bpe_.token(id);
  }
  return out;
}

int Tokenizer::special_id(const std::string& token) const {
  for (const std::string& s : spec_.special_tokens)
    if (s == token) return bpe_.find(s);
  return -1;
}

std::vector<int64_t> pad_text(const std::vector<int>& ids, int text_len, int text_vocab) {
  std::vector<int64_t> out(static_cast<size_t>(text_len));
  for (int i = 0; i < text_len; ++i)
    out[static_cast<size_t>(i)] = i < static_cast<int>(ids.size()) ? ids[static_cast<size_t>(i)]
                                                                   : text_vocab + i;
  return out;
}

Tokenizer tokenizer_for_run(const std::string& run_file, bool resume, const std::string& given,
                            const std::vector<std::vector<std::string>>& captions, int vocab_size) {
  Tokenizer tokenizer;
  if (resume) {
    tokenizer = Tokenizer::load(run_file);
  } else if (!given.empty()) {
    tokenizer = Tokenizer::load(given);
  } else {
    std::vector<std::string> all;
    for (const auto& c : captions) all.insert(all.end(), c.begin(), c.end());
    TokenizerTrainOptions options;
    options.vocab_size = vocab_size;
    tokenizer = Tokenizer::train(all, options);
  }
  if (tokenizer.vocab_size() > vocab_size)
    throw Error("tokenizer has " + std::to_string(tokenizer.vocab_size()) + " ids, more than the model's " +
                std::to_string(vocab_size) + " text ids (prior.text_vocab)");
  tokenizer.save(run_file);
  return tokenizer;
}

}  // namespace dalle

// The caption tokenizer: optional NFC + lowercasing, GPT-2 pre-tokenization, byte-level BPE with
// optional dropout. Loads our JSON, GPT-2's encoder.json + vocab.bpe and Hugging Face
// tokenizer.json (byte-level BPE); learns new vocabularies from captions.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dalle/text/bpe.h"
#include "dalle/text/bpe_train.h"

namespace dalle {

struct TextNormalization {
  bool nfc = false;
  bool lowercase = false;
};

// Everything a tokenizer file describes.
struct TokenizerSpec {
  BpeVocab vocab;                           // special tokens included, as their literal text
  std::vector<std::string> special_tokens;  // never produced by encoding text
  TextNormalization normalization;
  bool add_prefix_space = false;            // Hugging Face's ByteLevel option
};

struct TokenizerTrainOptions {
  int vocab_size = 16384;  // the paper's; 256 bytes + merges + special tokens
  BpeTrainOptions bpe;     // bpe.merges is derived from vocab_size
  // Reserved at the top of the vocabulary: marks the end of a caption for later multi-caption
  // streams; plain text never encodes to it.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
};

class Tokenizer {
 public:
  Tokenizer() = default;
  explicit Tokenizer(TokenizerSpec spec);  // throws dalle::Error on an inconsistent vocabulary

  static Tokenizer train(const std::vector<std::string>& corpus, const TokenizerTrainOptions& options);
  // PATH: our JSON, a Hugging Face tokenizer.json, or a folder (or file in it) with GPT-2's
  // encoder.json + vocab.bpe; detected from the contents.
  static Tokenizer load(const std::string& path);
  void save(const std::string& path) const;  // our JSON, written atomically

  std::vector<int> encode(std::string_view text) const;
  // BPE dropout: each applicable merge is skipped with probability `dropout` (paper: 0.1 when
  // training, 0 at inference).
  std::vector<int> encode(std::string_view text, double dropout, std::mt19937_64& rng,
                          DropoutStats* stats = nullptr) const;
  // The bytes of the ids; throws on an id outside the vocabulary.
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const { return bpe_.size(); }
  // 32 hex digits (XXH3-128) of everything that decides the ids: vocabulary, merges, special
  // tokens and normalisation. Models that read ids (the reranker) record it to refuse another
  // tokenizer of the same size.
  std::string fingerprint() const;
  const TokenizerSpec& spec() const { return spec_; }
  int special_id(const std::string& token) const;  // -1 when absent

 private:
  std::string prepare(std::string_view text) const;

  TokenizerSpec spec_;
  BpeModel bpe_;
  struct PieceCache;
  std::shared_ptr<PieceCache> cache_;  // shared by copies: the same pieces give the same ids
};

// The tokenizer of a training run writing `run_file`: a resumed run keeps its own, otherwise the
// file `given` is loaded, or, when empty, one of `vocab_size` ids is learned from the captions.
// It is saved to `run_file` and checked to fit `vocab_size`.
Tokenizer tokenizer_for_run(const std::string& run_file, bool resume, const std::string& given,
                            const std::vector<std::vector<std::string>>& captions, int vocab_size);

// Truncates to `text_len` and fills position i >= length with the pad id text_vocab + i
// (SPEC §2: a learned padding token per position).
std::vector<int64_t> pad_text(const std::vector<int>& ids, int text_len, int text_vocab);

}  // namespace dalle

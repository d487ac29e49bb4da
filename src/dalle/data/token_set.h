// Image tokens for the prior: the dVAE's argmax codes as uint16 safetensors shards next to
// their captions, plus the VAE that made them (config.json + vae.safetensors), so a token
// folder is self-describing and the prior's run can become a complete bundle.
//   TOKENS/shard-000000.safetensors   "tokens": U16 [n, h, w]
//   TOKENS/shard-000000.captions.jsonl one JSON array of captions per image
//   TOKENS/config.json, TOKENS/vae.safetensors
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace dalle {

struct TokenSet {
  torch::Tensor tokens;  // int64 [N, h, w]
  std::vector<std::vector<std::string>> captions;
};

void token_set_write(const std::string& dir, const TokenSet& set, int64_t shard_size = 10000);

// Writes a token folder incrementally, a shard each `shard_size` samples: what streaming
// encoders use, so memory holds one shard at most.
class TokenSetWriter {
 public:
  TokenSetWriter(std::string dir, int64_t shard_size = 10000);
  // tokens [n, h, w] (any integer type), one caption list per row.
  void add(const torch::Tensor& tokens, const std::vector<std::vector<std::string>>& captions);
  void close();  // writes the last, partial shard
  int64_t samples() const { return samples_; }

 private:
  void flush();
  std::string dir_;
  int64_t shard_size_;
  int64_t shard_ = 0, samples_ = 0;
  std::vector<torch::Tensor> pending_;  // rows of the shard being filled
  TokenSet buffer_;                     // their captions
};
// The whole folder in memory (small sets; training streams it with data/token_loader.h).
TokenSet token_set_read(const std::string& dir);

// The stems (DIR/shard-NNNNNN) of a token folder's shards, in order; throws naming `dir` when
// it is not a token folder or has none.
std::vector<std::string> token_shard_stems(const std::string& dir);
// One shard, checked: tokens and one caption list per image.
TokenSet token_shard_read(const std::string& stem);
// The first `max_lines` caption lists of a shard, without its tokens.
std::vector<std::vector<std::string>> token_shard_read_captions(const std::string& stem, int64_t max_lines);
// The caption lists of a folder's first `max_samples` samples, without reading tokens: for
// learning a tokenizer.
std::vector<std::vector<std::string>> token_set_read_captions(const std::string& dir, int64_t max_samples);

}  // namespace dalle

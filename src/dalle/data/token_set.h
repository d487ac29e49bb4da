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
TokenSet token_set_read(const std::string& dir);

}  // namespace dalle

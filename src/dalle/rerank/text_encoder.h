// The reranker's caption side: a small bidirectional pre-LN transformer over BPE ids (one
// shared pad id = vocab), mean-pooled over the real tokens and projected to the shared space.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "dalle/bundle/config.h"

namespace dalle {

class TextBlockImpl : public torch::nn::Module {
 public:
  TextBlockImpl(int width, int heads);
  // `key_bias` [B, 1, 1, L]: 0 for tokens, -inf for padding.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_bias);
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc{nullptr}, fc_proj{nullptr};

 private:
  int heads_;
};
TORCH_MODULE(TextBlock);

class TextEncoderImpl : public torch::nn::Module {
 public:
  TextEncoderImpl(const RerankConfig& config, int vocab);
  // ids [B, text_len] int64 (pad = vocab) -> [B, embed_dim], not normalised.
  torch::Tensor forward(const torch::Tensor& ids);
  int vocab() const { return vocab_; }

  torch::nn::Embedding token_emb{nullptr};
  torch::Tensor pos;
  std::vector<TextBlock> blocks;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear out{nullptr};

 private:
  int vocab_;
};
TORCH_MODULE(TextEncoder);

}  // namespace dalle

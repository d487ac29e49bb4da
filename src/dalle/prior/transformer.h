// The transformer prior (SPEC §2): one decoder-only stream of caption tokens (with a learned
// pad id per position) followed by the start-of-image token and the image tokens, pre-LN
// attention and MLP resblocks with the paper's per-layer masks, fp32 logits split into text
// (text + pad ids) and image (image ids) heads.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/prior/kv_cache.h"
#include "dalle/prior/masks.h"
#include "dalle/prior/sparse_attention.h"
#include "dalle/util/resblock_hook.h"

namespace dalle {

class AttentionBlockImpl : public torch::nn::Module {
 public:
  AttentionBlockImpl(int d_model, int heads, int layers);
  // x [B, S, d] with the additive mask `bias` [S, S]. Returns the residual branch (not yet
  // added to x).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);
  // The whole sequence (text_len + N positions) with attention restricted to the mask's windows.
  torch::Tensor forward_sparse(const torch::Tensor& x, const BlockLayout& layout, int64_t text_len,
                               const torch::Tensor& text_bias);
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

  // ln -> qkv, as [3, B, heads, S, head_dim].
  torch::Tensor project(const torch::Tensor& x);
  // Queries [B, H, S, hd] over keys/values [B, H, K, hd] with an optional additive bias
  // broadcast to [B, H, S, K]; returns the residual branch [B, S, d].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& bias);

 private:
  torch::Tensor merge_heads(const torch::Tensor& out);
  int heads_;
};
TORCH_MODULE(AttentionBlock);

class MlpBlockImpl : public torch::nn::Module {
 public:
  MlpBlockImpl(int d_model, int layers);
  torch::Tensor forward(const torch::Tensor& x);  // the residual branch
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear fc{nullptr}, proj{nullptr};
};
TORCH_MODULE(MlpBlock);

struct PriorLogits {
  torch::Tensor text;   // [B, T-1, text_vocab + text_len]: predicts text[1:]
  torch::Tensor image;  // [B, N, image_vocab]: predicts image[0:]
};

class PriorImpl : public torch::nn::Module {
 public:
  PriorImpl(const PriorConfig& config, int grid_h, int grid_w, int image_vocab);
  // Moves the parameters and the attention masks, which are constants rather than buffers (a
  // bundle does not store them).
  using torch::nn::Module::to;
  void to(torch::Device device, bool non_blocking = false) override;

  // text [B, T] int64 (ids with per-position pad ids), image [B, N] int64.
  PriorLogits forward(const torch::Tensor& text, const torch::Tensor& image);
  // The final LayerNorm's output [B, T + N, d] that `forward` applies the heads to.
  torch::Tensor hidden(const torch::Tensor& text, const torch::Tensor& image);
  // The heads on final activations: fp32 logits even inside an autocast region.
  torch::Tensor text_logits(const torch::Tensor& h);
  torch::Tensor image_logits(const torch::Tensor& h);
  // The dense masked computation over all (text + N)^2 pairs: the reference the sparse path is
  // tested and benchmarked against. Off by default.
  void use_dense_attention(bool dense) { dense_attention_ = dense; }
  // Wraps every resblock of `forward` (not the cached decoding path); empty = plain calls.
  void set_resblock_runner(ResblockRunner runner) { resblock_runner_ = std::move(runner); }
  // Parameters of each resblock, in the runner's block order.
  std::vector<std::vector<torch::Tensor>> resblock_parameters() const;

  // Incremental decoding with the windowed cache (kv_cache.h). `prefill` runs text,
  // start-of-image and the given first image tokens `init` [B, P] (may be undefined: P = 0)
  // and returns the image logits for token P ([B, image_vocab]); `step` feeds image token
  // `index` and returns the logits for token index + 1.
  KvCache make_cache(int64_t batch) const;
  torch::Tensor prefill(const torch::Tensor& text, KvCache& cache, const torch::Tensor& init = {});
  torch::Tensor step(const torch::Tensor& token, int64_t index, KvCache& cache);
  // `step` with the slot read from `slot` on the device (KvCache::SlotIndex of image token
  // index + 1): the same logits, from kernels that do not depend on the step, which a CUDA graph
  // captures once and replays. Changes nothing on the host: the caller advances cache.length.
  torch::Tensor step_indexed(const torch::Tensor& token, const KvCache::SlotIndex& slot, KvCache& cache);

  int text_len() const { return config_.text_len; }
  int image_tokens() const { return grid_h_ * grid_w_; }
  int image_vocab() const { return image_vocab_; }
  int text_vocab() const { return config_.text_vocab; }
  const std::vector<MaskType>& masks() const { return masks_; }
  const PriorConfig& config() const { return config_; }

  torch::nn::Embedding text_emb{nullptr}, image_emb{nullptr};
  torch::Tensor text_pos, row_emb, col_emb;
  std::vector<AttentionBlock> attn;
  std::vector<MlpBlock> mlp;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear text_head{nullptr}, image_head{nullptr};

 private:
  // Embeddings of image slots [first, first + S) whose contents are `slot_tokens` [B, S]
  // (image_vocab = start-of-image).
  torch::Tensor embed_slots(const torch::Tensor& slot_tokens, int64_t first);
  torch::Tensor embed_text(const torch::Tensor& text);
  torch::Tensor run_blocks(torch::Tensor x);
  torch::Tensor bias_rows(int layer, int64_t count) const;

  PriorConfig config_;
  int grid_h_, grid_w_, image_vocab_;
  std::vector<MaskType> masks_;
  std::vector<torch::Tensor> mask_bias_;  // per distinct mask type: additive [L, L]
  std::vector<BlockLayout> layouts_;      // per distinct mask type
  torch::Tensor text_bias_;               // causal [T, T]
  bool dense_attention_ = false;
  ResblockRunner resblock_runner_;
};
TORCH_MODULE(Prior);

// Parameter count from the config alone, for `dalle info`.
int64_t prior_param_count(const PriorConfig& config, int grid_h, int grid_w, int image_vocab);

}  // namespace dalle

// Token-by-token decoding of the prior for sampling (issue 24). Two implementations of one
// interface: `ReferenceDecoder` runs the libtorch module with its windowed KV cache (the path
// the module's own tests pin down), `PriorDecoder` is the fast path: the same function in plain
// loops over packed weights (fp32, bf16 or int8, packed_linear.h) and preallocated buffers, so a
// step costs reading the weights once, not hundreds of tensor operations' overhead.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dalle/prior/kv_cache.h"
#include "dalle/prior/packed_linear.h"
#include "dalle/prior/transformer.h"

namespace dalle {

class ImageTokenDecoder {
 public:
  virtual ~ImageTokenDecoder() = default;
  // Starts rows = text.size(0) sequences: text [rows, T] int64, then start-of-image and the
  // given first image tokens `init` [rows, P] (undefined: P = 0). Returns the image logits for
  // token P, [rows, image_vocab] fp32.
  virtual torch::Tensor start(const torch::Tensor& text, const torch::Tensor& init) = 0;
  // Feeds image token `index` [rows] int64; returns the logits for token index + 1. The result
  // may be a view of internal memory, valid until the next call.
  virtual torch::Tensor step(const torch::Tensor& tokens, int64_t index) = 0;
  virtual int64_t image_tokens() const = 0;
};

// Prior::prefill / Prior::step with a KvCache, on the prior's device (the GPU path): inputs on any
// device, logits on the prior's. `bf16`: under bf16 autocast (the logits stay fp32).
class ReferenceDecoder : public ImageTokenDecoder {
 public:
  explicit ReferenceDecoder(Prior prior, bool bf16 = false) : prior_(std::move(prior)), bf16_(bf16) {}
  torch::Tensor start(const torch::Tensor& text, const torch::Tensor& init) override;
  torch::Tensor step(const torch::Tensor& tokens, int64_t index) override;
  int64_t image_tokens() const override { return prior_->image_tokens(); }

 private:
  Prior prior_;
  bool bf16_;
  KvCache cache_;
};

// The GPU decoder: Prior::step_indexed (the same function as ReferenceDecoder's step, from
// kernels that do not depend on the step), captured into a CUDA graph at its second step and
// replayed from then on, one launch per token instead of about 20 per layer. Runs the indexed
// step eagerly where graphs are not built, not asked for (`graphs`), on a CPU, or when the
// capture fails (graph_status() says which).
class GraphDecoder : public ImageTokenDecoder {
 public:
  GraphDecoder(Prior prior, bool bf16, bool graphs = true);
  torch::Tensor start(const torch::Tensor& text, const torch::Tensor& init) override;
  torch::Tensor step(const torch::Tensor& tokens, int64_t index) override;
  int64_t image_tokens() const override { return prior_->image_tokens(); }
  // "replaying a CUDA graph", or why steps run eagerly.
  const std::string& graph_status() const { return status_; }

 private:
  void run_step();  // the captured body: reads token_ and slot_, writes logits_ and the cache

  Prior prior_;
  bool bf16_, graphs_;
  KvCache cache_;
  KvCache::SlotIndex slot_;
  torch::Tensor token_, logits_;
  std::function<void()> replay_;
  int64_t eager_steps_ = 0;
  std::string status_;
};

// Quantized linear weights by parameter name ("blocks.0.attn.qkv.weight"), as a quantized bundle
// stores them; layers not listed are quantized from the module's weights.
using Int8Weights = std::map<std::string, Int8Weight>;

// The prior's linear layers whose weights `format` applies to: every resblock's qkv, proj, fc
// and proj. Embeddings, LayerNorms and the text head stay fp32 (the decoder also runs the image
// head in bf16 under the bf16 and int8 formats; a bundle stores it fp32).
std::vector<std::string> prior_quantizable_weights(const Prior& prior);

class PriorDecoder : public ImageTokenDecoder {
 public:
  PriorDecoder(const Prior& prior, WeightFormat format, const Int8Weights& int8 = {});
  torch::Tensor start(const torch::Tensor& text, const torch::Tensor& init) override;
  torch::Tensor step(const torch::Tensor& tokens, int64_t index) override;
  int64_t image_tokens() const override { return int64_t(grid_h_) * grid_w_; }

  // Bytes of weights one decoding step reads (every layer and the image head).
  int64_t step_weight_bytes() const;

 private:
  struct Norm {
    std::vector<float> weight, bias;
    float eps = 1e-5f;
  };
  struct Layer {
    Norm ln1, ln2;
    PackedLinear qkv, attn_proj, fc, mlp_proj;
    MaskType mask;
  };
  void reserve(int64_t rows, int64_t chunk);
  // text_owner_, owner_slot_, captions_ and query_blocks_ for captions ids [rows, text_len_].
  void group_rows(const int64_t* ids, int64_t rows);
  // Runs positions [first, first + chunk) of every row, whose embeddings are in x_; returns the
  // image logits of each row's last position (a view of logits_).
  torch::Tensor run(int64_t first, int64_t chunk);
  void attend(size_t layer, int64_t position, int64_t chunk, int64_t c);
  template <class T>  // the cache's element: float, or uint16_t bfloat16 bit patterns
  void attend(T* keys, T* values, size_t layer, int64_t position, int64_t chunk, int64_t c);
  int64_t storage_of(MaskType mask, int64_t position) const;

  int text_len_, grid_h_, grid_w_, d_, heads_, image_vocab_;
  std::vector<float> text_emb_, image_emb_, text_pos_, row_emb_, col_emb_;
  std::vector<Layer> layers_;
  Norm ln_f_;
  PackedLinear image_head_;
  // Per mask type: the ring size (image slots kept) and, per image slot, the cache indices of
  // the image keys it attends (the text keys, [0, T), are implied).
  int64_t capacity_[3] = {0, 0, 0};
  std::vector<std::vector<int32_t>> image_keys_[3];

  int64_t rows_ = 0, length_ = 0;
  std::vector<int64_t> text_owner_;  // per row: the first row with the same caption
  std::vector<int64_t> captions_;    // the first row of each distinct caption
  std::vector<int64_t> owner_slot_;  // per row: its caption's index in captions_
  // Per layer, per distinct caption: the text keys transposed, [d, text_kt_stride] (text
  // positions padded with zeros to a multiple of 64), for the attention kernel's register blocks.
  int64_t text_kt_stride_ = 0;
  std::vector<std::vector<float>> text_kt_;
  std::vector<std::pair<int64_t, int64_t>> query_blocks_;  // (first row, rows): consecutive rows of one caption
  // The KV cache, per layer [rows, capacity, d]: fp32 for fp32 weights, else bfloat16 (the step
  // at a batch of candidates reads it from memory; half the bytes is close to half the time).
  bool bf16_cache_;
  std::vector<std::vector<float>> keys_, values_;
  std::vector<std::vector<uint16_t>> keys16_, values16_;
  std::vector<float> x_, h_, qkv_, att_, mlp_, scores_, last_, logits_;
};

}  // namespace dalle

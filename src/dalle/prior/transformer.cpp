#include "dalle/prior/transformer.h"

#include "dalle/util/torch_api.h"

#include <cmath>

namespace dalle {

namespace {

// Residual output projections start scaled by 1/sqrt(2 * layers) (SPEC §2).
void init_linear(torch::nn::Linear& linear, double std) {
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, std);
  if (linear->bias.defined()) linear->bias.zero_();
}

}  // namespace

AttentionBlockImpl::AttentionBlockImpl(int d, int heads, int layers) : heads_(heads) {
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  qkv = register_module("qkv", torch::nn::Linear(d, 3 * d));
  proj = register_module("proj", torch::nn::Linear(d, d));
  init_linear(qkv, 0.02);
  init_linear(proj, 0.02 / std::sqrt(2.0 * layers));
}

torch::Tensor AttentionBlockImpl::project(const torch::Tensor& x) {
  const int64_t b = x.size(0), s = x.size(1), d = x.size(2);
  return qkv(ln(x)).view({b, s, 3, heads_, d / heads_}).permute({2, 0, 3, 1, 4});
}

torch::Tensor AttentionBlockImpl::merge_heads(const torch::Tensor& out) {
  const int64_t b = out.size(0), s = out.size(2);
  return proj(out.permute({0, 2, 1, 3}).reshape({b, s, -1}));
}

torch::Tensor AttentionBlockImpl::forward_sparse(const torch::Tensor& x, const BlockLayout& layout,
                                                 int64_t text_len, const torch::Tensor& text_bias) {
  const torch::Tensor qkv_out = project(x);
  return merge_heads(sparse_masked_attention(qkv_out[0], qkv_out[1], qkv_out[2], layout, text_len, text_bias));
}

torch::Tensor AttentionBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  const torch::Tensor qkv_out = project(x);
  return attend(qkv_out[0], qkv_out[1], qkv_out[2], bias);
}

torch::Tensor AttentionBlockImpl::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& bias) {
  const double scale = 1 / std::sqrt(double(q.size(-1)));
  if (q.size(2) == 1) {
    // One query per head (a decoding step): broadcast products instead of B * heads tiny
    // matrix products, which cost more in call overhead than in arithmetic.
    torch::Tensor scores = (q * k).sum(-1) * scale;  // [B, H, K]
    if (bias.defined()) scores = scores + bias;
    return merge_heads((torch::softmax(scores, -1).unsqueeze(-1) * v).sum(2, true));
  }
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) * scale;
  if (bias.defined()) scores = scores + bias;
  return merge_heads(torch::matmul(torch::softmax(scores, -1), v));
}

MlpBlockImpl::MlpBlockImpl(int d, int layers) {
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  fc = register_module("fc", torch::nn::Linear(d, 4 * d));
  proj = register_module("proj", torch::nn::Linear(4 * d, d));
  init_linear(fc, 0.02);
  init_linear(proj, 0.02 / std::sqrt(2.0 * layers));
}

torch::Tensor MlpBlockImpl::forward(const torch::Tensor& x) {
  return proj(torch::gelu(fc(ln(x))));
}

PriorImpl::PriorImpl(const PriorConfig& config, int grid_h, int grid_w, int image_vocab)
    : config_(config), grid_h_(grid_h), grid_w_(grid_w), image_vocab_(image_vocab) {
  const int d = config.d_model;
  const int t = config.text_len;
  text_emb = register_module("text_emb", torch::nn::Embedding(config.text_vocab + t, d));
  image_emb = register_module("image_emb", torch::nn::Embedding(image_vocab + 1, d));
  text_pos = register_parameter("text_pos", torch::randn({t, d}) * 0.01);
  row_emb = register_parameter("row_emb", torch::randn({grid_h, d}) * 0.01);
  col_emb = register_parameter("col_emb", torch::randn({grid_w, d}) * 0.01);
  {
    torch::NoGradGuard no_grad;
    text_emb->weight.normal_(0.0, 0.02);
    image_emb->weight.normal_(0.0, 0.02);
  }
  auto blocks = std::make_shared<torch::nn::Module>();
  masks_ = layer_mask_types(config.layers);
  for (int i = 0; i < config.layers; ++i) {
    auto layer = std::make_shared<torch::nn::Module>();
    attn.push_back(layer->register_module("attn", AttentionBlock(d, config.heads, config.layers)));
    mlp.push_back(layer->register_module("mlp", MlpBlock(d, config.layers)));
    blocks->register_module(std::to_string(i), layer);
  }
  register_module("blocks", blocks);
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  text_head = register_module("text_head", torch::nn::Linear(d, config.text_vocab + t));
  image_head = register_module("image_head", torch::nn::Linear(d, image_vocab));
  init_linear(text_head, 0.02);
  init_linear(image_head, 0.02);

  const MaskShape shape{t, grid_h, grid_w, config.conv_kernel};
  for (MaskType type : {MaskType::row, MaskType::column, MaskType::conv}) {
    torch::Tensor allowed = dense_attention_mask(type, shape);
    mask_bias_.push_back(torch::zeros(allowed.sizes()).masked_fill(allowed.logical_not(),
                                                                    -INFINITY));
    layouts_.push_back(block_layout_make(type, shape));
  }
  text_bias_ = torch::full({t, t}, -INFINITY).triu(1);
}

void PriorImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  for (torch::Tensor& bias : mask_bias_) bias = bias.to(device);
  for (BlockLayout& layout : layouts_) {
    layout.bias = layout.bias.to(device);
    if (layout.order.defined()) layout.order = layout.order.to(device);
    if (layout.inverse.defined()) layout.inverse = layout.inverse.to(device);
  }
  text_bias_ = text_bias_.to(device);
}

torch::Tensor PriorImpl::embed_text(const torch::Tensor& text) {
  return text_emb(text) + text_pos.narrow(0, 0, text.size(1));
}

torch::Tensor PriorImpl::embed_slots(const torch::Tensor& slot_tokens, int64_t first) {
  const int64_t s = slot_tokens.size(1);
  torch::Tensor slots = torch::arange(first, first + s, slot_tokens.options());
  torch::Tensor pos = row_emb.index_select(0, slots.div(grid_w_, "floor")) +
                      col_emb.index_select(0, slots.remainder(grid_w_));
  return image_emb(slot_tokens) + pos;
}

torch::Tensor PriorImpl::bias_rows(int layer, int64_t count) const {
  return mask_bias_[static_cast<size_t>(masks_[layer])].narrow(0, 0, count).narrow(1, 0, count);
}

torch::Tensor PriorImpl::run_blocks(torch::Tensor x) {
  // Branches capture by value: a checkpointing runner calls them again during backward.
  auto run = [&](int64_t block, const torch::Tensor& in, const ResidualBranch& branch) {
    return resblock_runner_ ? resblock_runner_(block, in, branch) : branch(in);
  };
  for (size_t i = 0; i < attn.size(); ++i) {
    const int layer = static_cast<int>(i);
    AttentionBlock a = attn[i];
    if (dense_attention_) {
      const torch::Tensor bias = bias_rows(layer, x.size(1));
      x = x + run(2 * i, x, [a, bias](const torch::Tensor& h) mutable { return a->forward(h, bias); });
    } else {
      const BlockLayout* layout = &layouts_[static_cast<size_t>(masks_[i])];
      const int64_t text_len = config_.text_len;
      const torch::Tensor text_bias = text_bias_;
      x = x + run(2 * i, x, [a, layout, text_len, text_bias](const torch::Tensor& h) mutable {
            return a->forward_sparse(h, *layout, text_len, text_bias);
          });
    }
    MlpBlock m = mlp[i];
    x = x + run(2 * i + 1, x, [m](const torch::Tensor& h) mutable { return m->forward(h); });
  }
  return ln_f(x);
}

torch::Tensor PriorImpl::hidden(const torch::Tensor& text, const torch::Tensor& image) {
  const int64_t b = text.size(0), t = text.size(1), n = image.size(1);
  TORCH_CHECK(t == config_.text_len, "prior: text length ", t, " != ", config_.text_len);
  TORCH_CHECK(n == image_tokens(), "prior: image length ", n, " != ", image_tokens());
  torch::Tensor soi = torch::full({b, 1}, image_vocab_, image.options());
  torch::Tensor slots = torch::cat({soi, image.narrow(1, 0, n - 1)}, 1);
  return run_blocks(torch::cat({embed_text(text), embed_slots(slots, 0)}, 1));
}

PriorLogits PriorImpl::forward(const torch::Tensor& text, const torch::Tensor& image) {
  const torch::Tensor h = hidden(text, image);
  const int64_t t = text.size(1), n = image.size(1);
  PriorLogits out;
  out.text = text_logits(h.narrow(1, 0, t - 1));
  out.image = image_logits(h.narrow(1, t, n));
  return out;
}

// The heads run outside any autocast region on fp32 activations: logits stay 32-bit (SPEC §3).
torch::Tensor PriorImpl::text_logits(const torch::Tensor& h) {
  AutocastOff fp32;
  return text_head(h.to(torch::kFloat32));
}

torch::Tensor PriorImpl::image_logits(const torch::Tensor& h) {
  AutocastOff fp32;
  return image_head(h.to(torch::kFloat32));
}

std::vector<std::vector<torch::Tensor>> PriorImpl::resblock_parameters() const {
  std::vector<std::vector<torch::Tensor>> out;
  for (size_t i = 0; i < attn.size(); ++i) {
    out.push_back(attn[i]->parameters());
    out.push_back(mlp[i]->parameters());
  }
  return out;
}

KvCache PriorImpl::make_cache(int64_t batch) const {
  const MaskShape shape{config_.text_len, grid_h_, grid_w_, config_.conv_kernel};
  return KvCache(masks_, shape, batch, config_.heads, config_.d_model / config_.heads, text_pos.device());
}

torch::Tensor PriorImpl::prefill(const torch::Tensor& text, KvCache& cache, const torch::Tensor& init) {
  const int64_t b = text.size(0);
  TORCH_CHECK(!init.defined() || (init.size(0) == b && init.size(1) < image_tokens()),
              "prefill: init tokens must be [", b, ", P < ", image_tokens(), "]");
  torch::Tensor slots = torch::full({b, 1}, image_vocab_, text.options());
  if (init.defined()) slots = torch::cat({slots, init.to(text.device())}, 1);
  torch::Tensor x = torch::cat({embed_text(text), embed_slots(slots, 0)}, 1);
  // The prefix sees itself through the dense masks, then leaves each layer's window behind.
  for (size_t i = 0; i < attn.size(); ++i) {
    const int layer = static_cast<int>(i);
    const torch::Tensor qkv_out = attn[i]->project(x);
    cache.store_prefix(layer, qkv_out[1], qkv_out[2]);
    x = x + attn[i]->attend(qkv_out[0], qkv_out[1], qkv_out[2], bias_rows(layer, x.size(1)));
    x = x + mlp[i]->forward(x);
  }
  cache.length = x.size(1);
  return image_logits(ln_f(x.select(1, x.size(1) - 1)));
}

torch::Tensor PriorImpl::step(const torch::Tensor& token, int64_t index, KvCache& cache) {
  // Image token `index` sits in slot index + 1.
  const int64_t slot = index + 1;
  TORCH_CHECK(cache.length == config_.text_len + slot, "step: image token ", index, " fed out of order");
  // One slot's position embedding as views: no index tensors per token.
  torch::Tensor x = image_emb(token.view({-1, 1})) + row_emb.narrow(0, slot / grid_w_, 1) +
                    col_emb.narrow(0, slot % grid_w_, 1);
  for (size_t i = 0; i < attn.size(); ++i) {
    const torch::Tensor qkv_out = attn[i]->project(x);
    const KvCache::Window w = cache.store_step(static_cast<int>(i), slot, qkv_out[1], qkv_out[2]);
    x = x + attn[i]->attend(qkv_out[0], w.keys, w.values, w.bias);
    x = x + mlp[i]->forward(x);
  }
  cache.length += 1;
  return image_logits(ln_f(x.select(1, 0)));
}

torch::Tensor PriorImpl::step_indexed(const torch::Tensor& token, const KvCache::SlotIndex& slot, KvCache& cache) {
  torch::Tensor x = image_emb(token.view({-1, 1})) + row_emb.index_select(0, slot.row) + col_emb.index_select(0, slot.col);
  for (size_t i = 0; i < attn.size(); ++i) {
    const torch::Tensor qkv_out = attn[i]->project(x);
    const KvCache::Window w = cache.store_step_indexed(static_cast<int>(i), slot, qkv_out[1], qkv_out[2]);
    x = x + attn[i]->attend(qkv_out[0], w.keys, w.values, w.bias);
    x = x + mlp[i]->forward(x);
  }
  return image_logits(ln_f(x.select(1, 0)));
}

int64_t prior_param_count(const PriorConfig& c, int grid_h, int grid_w, int image_vocab) {
  const int64_t d = c.d_model;
  const int64_t text_ids = c.text_vocab + c.text_len;
  int64_t n = text_ids * d + (image_vocab + 1) * d + c.text_len * d + (grid_h + grid_w) * d;
  const int64_t per_layer = 2 * d + (3 * d * d + 3 * d) + (d * d + d)   // attention resblock
                            + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d);  // MLP resblock
  n += c.layers * per_layer;
  n += 2 * d;                                           // final LayerNorm
  n += d * text_ids + text_ids + d * image_vocab + image_vocab;  // heads
  return n;
}

}  // namespace dalle

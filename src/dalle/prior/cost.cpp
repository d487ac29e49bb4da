#include "dalle/prior/cost.h"

#include "dalle/prior/masks.h"
#include "dalle/prior/sparse_attention.h"
#include "dalle/prior/transformer.h"

namespace dalle {

namespace {

// Mean number of keys an image query may attend under `type` (text keys included).
double mean_image_keys(MaskType type, const MaskShape& shape) {
  const int n = shape.grid_h * shape.grid_w;
  double total = 0;
  for (int q = 0; q < n; ++q) {
    int allowed = 0;
    for (int k = 0; k <= q; ++k) allowed += image_mask_allows(type, shape, q, k);
    total += allowed;
  }
  return shape.text_len + total / n;
}

void add_linear(std::vector<ParamShape>& out, const std::string& name, int64_t in, int64_t out_features) {
  out.push_back({name + ".weight", {out_features, in}});
  out.push_back({name + ".bias", {out_features}});
}

void add_layer_norm(std::vector<ParamShape>& out, const std::string& name, int64_t d) {
  out.push_back({name + ".weight", {d}});
  out.push_back({name + ".bias", {d}});
}

}  // namespace

std::vector<ParamShape> prior_param_shapes(const PriorConfig& c, int grid_h, int grid_w, int image_vocab) {
  const int64_t d = c.d_model;
  const int64_t text_ids = c.text_vocab + c.text_len;
  // A module's own parameters come before its children's (libtorch lists them depth first).
  std::vector<ParamShape> out = {
      {"text_pos", {c.text_len, d}},
      {"row_emb", {grid_h, d}},
      {"col_emb", {grid_w, d}},
      {"text_emb.weight", {text_ids, d}},
      {"image_emb.weight", {image_vocab + 1, d}},  // + start-of-image
  };
  for (int i = 0; i < c.layers; ++i) {
    const std::string block = "blocks." + std::to_string(i);
    add_layer_norm(out, block + ".attn.ln", d);
    add_linear(out, block + ".attn.qkv", d, 3 * d);
    add_linear(out, block + ".attn.proj", d, d);
    add_layer_norm(out, block + ".mlp.ln", d);
    add_linear(out, block + ".mlp.fc", d, 4 * d);
    add_linear(out, block + ".mlp.proj", 4 * d, d);
  }
  add_layer_norm(out, "ln_f", d);
  add_linear(out, "text_head", d, text_ids);
  add_linear(out, "image_head", d, image_vocab);
  return out;
}

PriorCost prior_cost(const PriorConfig& c, int grid_h, int grid_w, int image_vocab, int64_t batch) {
  const double d = c.d_model;
  const double t = c.text_len;
  const double n = static_cast<double>(grid_h) * grid_w;
  const double len = t + n;
  const MaskShape shape{c.text_len, grid_h, grid_w, c.conv_kernel};
  const auto masks = layer_mask_types(c.layers);

  // Matrix products per token and layer: qkv 3d^2, projection d^2, MLP 8d^2 -> 2 * 12 d^2 FLOPs.
  const double block_matmul = 2.0 * 12.0 * d * d * c.layers;
  // Logits: text positions over text + pad ids, image positions over image ids.
  const double head = 2.0 * d * ((t - 1) * (c.text_vocab + t) + n * image_vocab) / len;
  const double text_keys = (t + 1) / 2.0;  // causal text queries
  double attention = 0, attention_dense = 0, sample_attention = 0;
  for (MaskType type : masks) {
    const double image_keys = mean_image_keys(type, shape);
    // QK^T and AV: 2 * 2 * d FLOPs per key.
    attention += 4.0 * d * (t * text_keys + n * image_keys) / len;
    attention_dense += 4.0 * d * (len + 1) / 2.0;
    sample_attention += 4.0 * d * image_keys;
  }
  PriorCost cost;
  cost.params = prior_param_count(c, grid_h, grid_w, image_vocab);
  cost.train_flops_per_token = 3.0 * (block_matmul + head + attention);
  cost.train_flops_per_token_dense = 3.0 * (block_matmul + head + attention_dense);
  cost.sample_flops_per_token = block_matmul + 2.0 * d * image_vocab + sample_attention;
  cost.weight_bytes = 4 * cost.params;
  cost.optimizer_bytes = 3 * 4 * cost.params;
  // Per token and layer, kept for backward: residual in, two LayerNorm outputs, qkv (3d),
  // attention output, MLP hidden before and after GELU (8d) = 14d floats, plus the attention
  // probabilities of the sparse kernel: per head, causal text scores for text queries and
  // text + window scores for image queries.
  double probabilities = 0;
  for (MaskType type : masks) {
    const double window = static_cast<double>(block_layout_make(type, shape).bias.size(2));
    probabilities += c.heads * (t * t + n * (t + window)) / len;
  }
  const double per_token = 14.0 * d * c.layers + probabilities + (c.text_vocab + t + image_vocab);
  cost.activation_bytes = static_cast<int64_t>(4.0 * batch * len * per_token);
  return cost;
}

}  // namespace dalle

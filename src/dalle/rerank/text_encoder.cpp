#include "dalle/rerank/text_encoder.h"

#include "dalle/util/torch_api.h"

#include <cmath>

namespace dalle {

TextBlockImpl::TextBlockImpl(int w, int heads) : heads_(heads) {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  qkv = register_module("qkv", torch::nn::Linear(w, 3 * w));
  proj = register_module("proj", torch::nn::Linear(w, w));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  fc = register_module("fc", torch::nn::Linear(w, 4 * w));
  fc_proj = register_module("fc_proj", torch::nn::Linear(4 * w, w));
}

torch::Tensor TextBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& key_bias) {
  const int64_t b = x.size(0), s = x.size(1), w = x.size(2), hd = w / heads_;
  const torch::Tensor h = qkv(ln1(x)).view({b, s, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  const torch::Tensor scores = torch::matmul(h[0], h[1].transpose(-1, -2)) / std::sqrt(double(hd)) + key_bias;
  const torch::Tensor att = torch::matmul(torch::softmax(scores, -1), h[2]);
  torch::Tensor y = x + proj(att.permute({0, 2, 1, 3}).reshape({b, s, w}));
  return y + fc_proj(torch::gelu(fc(ln2(y))));
}

TextEncoderImpl::TextEncoderImpl(const RerankConfig& c, int vocab) : vocab_(vocab) {
  token_emb = register_module("token_emb", torch::nn::Embedding(vocab + 1, c.text_width));
  pos = register_parameter("pos", torch::randn({c.text_len, c.text_width}) * 0.01);
  auto layers = std::make_shared<torch::nn::Module>();
  for (int i = 0; i < c.text_layers; ++i)
    blocks.push_back(layers->register_module(std::to_string(i), TextBlock(c.text_width, c.text_heads)));
  register_module("blocks", layers);
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.text_width})));
  out = register_module("out", torch::nn::Linear(c.text_width, c.embed_dim));
  torch::NoGradGuard no_grad;
  token_emb->weight.normal_(0.0, 0.02);
}

torch::Tensor TextEncoderImpl::forward(const torch::Tensor& ids) {
  const torch::Tensor real = ids.ne(vocab_);  // [B, L]
  // An all-padding caption (the empty prompt) would have no key at all: let it see its pads.
  const torch::Tensor keys = real.logical_or(real.any(1, true).logical_not());
  const torch::Tensor key_bias =
      torch::zeros(keys.sizes(), pos.options()).masked_fill(keys.logical_not(), -INFINITY).view({ids.size(0), 1, 1, -1});
  torch::Tensor x = token_emb(ids) + pos.narrow(0, 0, ids.size(1));
  for (auto& block : blocks) x = block->forward(x, key_bias);
  const torch::Tensor weight = keys.to(x.scalar_type()).unsqueeze(-1);
  return out(ln_f((x * weight).sum(1) / weight.sum(1)));
}

}  // namespace dalle

#include "dalle/rerank/image_encoder.h"

#include "dalle/util/torch_api.h"

#include <numeric>

namespace dalle {

ImageEncoderImpl::ImageEncoderImpl(const RerankConfig& c) {
  const int w = c.image_width;
  const int widths[] = {3, w, 2 * w, 4 * w, 4 * w};
  auto layers = std::make_shared<torch::nn::Module>();
  for (int i = 0; i < 4; ++i) {
    auto layer = std::make_shared<torch::nn::Module>();
    const int stride = i == 0 ? 1 : 2;
    convs.push_back(layer->register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(widths[i], widths[i + 1], 3).stride(stride).padding(1))));
    norms.push_back(layer->register_module(
        "norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(std::gcd(8, widths[i + 1]), widths[i + 1]))));
    layers->register_module(std::to_string(i), layer);
  }
  register_module("layers", layers);
  const int side = c.image_size / 8;
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * w * side * side})));
  out = register_module("out", torch::nn::Linear(4 * w * side * side, c.embed_dim));
}

torch::Tensor ImageEncoderImpl::forward(const torch::Tensor& images) {
  torch::Tensor x = images * 2 - 1;
  for (size_t i = 0; i < convs.size(); ++i) x = torch::gelu(norms[i](convs[i](x)));
  return out(ln_f(x.flatten(1)));
}

}  // namespace dalle

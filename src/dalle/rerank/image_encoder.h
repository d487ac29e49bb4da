// The reranker's image side: a small CNN on pixels. Three stride-2 convolutions keep an
// (image_size/8)^2 map that is flattened, not pooled, so where a shape sits still reaches the
// embedding (captions say "in the top left corner").
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "dalle/bundle/config.h"

namespace dalle {

class ImageEncoderImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderImpl(const RerankConfig& config);
  // float [B, 3, S, S] in [0, 1], S = config.image_size -> [B, embed_dim], not normalised.
  torch::Tensor forward(const torch::Tensor& images);

  std::vector<torch::nn::Conv2d> convs;
  std::vector<torch::nn::GroupNorm> norms;
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(ImageEncoder);

}  // namespace dalle

#include "dalle/rerank/contrastive_loss.h"

#include "dalle/util/torch_api.h"

namespace dalle {

torch::Tensor contrastive_loss(const torch::Tensor& text, const torch::Tensor& image,
                               const torch::Tensor& log_scale) {
  const torch::Tensor logits = log_scale.exp() * torch::matmul(text, image.t());
  const torch::Tensor target = torch::arange(text.size(0), text.options().dtype(torch::kLong));
  return (torch::nn::functional::cross_entropy(logits, target) +
          torch::nn::functional::cross_entropy(logits.t(), target)) / 2;
}

}  // namespace dalle

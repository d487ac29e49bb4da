#include "dalle/prior/loss.h"

#include "dalle/util/torch_api.h"

namespace dalle {

PriorLoss prior_loss(const PriorLogits& logits, const torch::Tensor& text, const torch::Tensor& image,
                     double text_weight) {
  namespace F = torch::nn::functional;
  PriorLoss out;
  // Pad ids are targets too: the paper trains them as tokens.
  const torch::Tensor text_targets = text.narrow(1, 1, text.size(1) - 1);
  out.text = F::cross_entropy(logits.text.reshape({-1, logits.text.size(-1)}), text_targets.reshape({-1}));
  out.image = F::cross_entropy(logits.image.reshape({-1, logits.image.size(-1)}), image.reshape({-1}));
  out.loss = text_weight * out.text + (1.0 - text_weight) * out.image;
  return out;
}

}  // namespace dalle

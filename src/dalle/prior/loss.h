// The prior's objective (SPEC §2): cross-entropy over text positions normalised by the number
// of text targets, over image positions by the number of image targets, mixed 1/8 : 7/8.
#pragma once
#include <torch/types.h>

#include "dalle/prior/transformer.h"

namespace dalle {

struct PriorLoss {
  torch::Tensor loss, text, image;
};

PriorLoss prior_loss(const PriorLogits& logits, const torch::Tensor& text, const torch::Tensor& image,
                     double text_weight = 1.0 / 8);

}  // namespace dalle

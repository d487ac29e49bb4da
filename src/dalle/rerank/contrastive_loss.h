// CLIP's symmetric InfoNCE: pair i of a batch is the positive for caption i and image i; every
// other pair of the batch is a negative. Cross-entropy over the scaled cosine similarities in
// both directions (caption -> image and image -> caption), averaged.
#pragma once
#include <torch/types.h>

namespace dalle {

// text, image [B, E], L2-normalised; log_scale: scalar tensor, the learned log temperature.
torch::Tensor contrastive_loss(const torch::Tensor& text, const torch::Tensor& image,
                               const torch::Tensor& log_scale);

}  // namespace dalle

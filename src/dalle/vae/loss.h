// The dVAE objective (SPEC §1): logit-Laplace reconstruction plus beta-weighted KL of the
// encoder's categorical distribution to the uniform prior, per image, normalised by H*W*3.
#pragma once
#include <torch/types.h>

namespace dalle {

// -ln f(x | mu, b) summed per image: ln(2b) + ln(x(1-x)) + |logit(x) - mu| / b.
// x_mapped in (0, 1), mu and log_b [B, C, H, W]. Returns [B].
torch::Tensor logit_laplace_nll(const torch::Tensor& x_mapped, const torch::Tensor& mu,
                                const torch::Tensor& log_b);

// KL(q || uniform) summed over positions per image: sum_k q ln q + ln K. logits [B, K, h, w].
torch::Tensor kl_to_uniform(const torch::Tensor& logits);

// Gumbel-softmax relaxation over the channel dimension at temperature tau.
torch::Tensor gumbel_softmax(const torch::Tensor& logits, double tau, torch::Generator& gen);

struct VaeLoss {
  torch::Tensor loss;   // scalar, what is minimised
  torch::Tensor nll;    // scalar, reconstruction term / (H W C), batch mean
  torch::Tensor kl;     // scalar, KL term / (H W C), batch mean (unweighted); undefined without an encoder
};

VaeLoss vae_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats,
                 const torch::Tensor& logits, double kl_weight);

// The decoder fine-tuning objectives, with the encoder frozen (kl undefined).
// "nll": the likelihood alone.
VaeLoss likelihood_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats);
// "mse", for reconstruction error (not in the paper): mu fits the squared error of the image the
// decoder shows, unmap(sigmoid(mu)), and ln b fits the likelihood around that mu (mu held fixed
// there), so b stays a calibrated scale. The likelihood is an L1 in logit space that lets the
// decoder widen b where it cannot place a pixel; PSNR is squared error in pixel space.
// `nll` reports the likelihood of (mu, ln b).
VaeLoss reconstruction_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats, double eps);

}  // namespace dalle

#include "dalle/vae/loss.h"

#include "dalle/util/torch_api.h"

#include <cmath>

namespace dalle {

namespace {

// The squared error's weight against the likelihood of ln b, which shares the decoder's trunk:
// 64 (100 in the mapped units of the likelihood) lets the squared error lead.
constexpr double kMseWeight = 64.0;

// Per pixel value: the objective's normaliser H * W * C.
double pixel_values(const torch::Tensor& x) { return static_cast<double>(x.size(1) * x.size(2) * x.size(3)); }

}  // namespace

torch::Tensor logit_laplace_nll(const torch::Tensor& x, const torch::Tensor& mu,
                                const torch::Tensor& log_b) {
  const torch::Tensor logit_x = torch::log(x) - torch::log1p(-x);
  const torch::Tensor nll = std::log(2.0) + log_b + torch::log(x * (1 - x)) +
                            (logit_x - mu).abs() * torch::exp(-log_b);
  return nll.flatten(1).sum(1);
}

torch::Tensor kl_to_uniform(const torch::Tensor& logits) {
  const torch::Tensor log_q = torch::log_softmax(logits, 1);
  const double log_k = std::log(static_cast<double>(logits.size(1)));
  return ((log_q.exp() * log_q).sum(1) + log_k).flatten(1).sum(1);
}

torch::Tensor gumbel_softmax(const torch::Tensor& logits, double tau, torch::Generator& gen) {
  torch::Tensor u = torch::rand(logits.sizes(), gen, logits.options());
  const torch::Tensor gumbel = -torch::log(-torch::log(u.clamp(1e-10, 1.0 - 1e-7)));
  return torch::softmax((logits + gumbel) / tau, 1);
}

VaeLoss likelihood_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats) {
  const int64_t c = x_mapped.size(1);
  VaeLoss out;
  out.nll = logit_laplace_nll(x_mapped, stats.slice(1, 0, c), stats.slice(1, c, 2 * c)).mean() / pixel_values(x_mapped);
  out.loss = out.nll;
  return out;
}

VaeLoss vae_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats,
                 const torch::Tensor& logits, double kl_weight) {
  VaeLoss out = likelihood_loss(x_mapped, stats);
  out.kl = kl_to_uniform(logits).mean() / pixel_values(x_mapped);
  out.loss = out.nll + kl_weight * out.kl;
  return out;
}

VaeLoss reconstruction_loss(const torch::Tensor& x_mapped, const torch::Tensor& stats, double eps) {
  const int64_t c = x_mapped.size(1);
  const torch::Tensor mu = stats.slice(1, 0, c), log_b = stats.slice(1, c, 2 * c);
  // In [0, 1] pixel units (unmapped, unclamped so the gradient survives at the ends).
  const torch::Tensor pixel_mse = ((torch::sigmoid(mu) - x_mapped) / (1.0 - 2.0 * eps)).pow(2).mean();
  const torch::Tensor scale_nll = logit_laplace_nll(x_mapped, mu.detach(), log_b).mean() / pixel_values(x_mapped);
  VaeLoss out;
  out.nll = scale_nll.detach();  // the same value as the likelihood of (mu, ln b)
  out.loss = kMseWeight * pixel_mse + scale_nll;
  return out;
}

}  // namespace dalle

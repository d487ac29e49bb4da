#include "dalle/vae/evaluate.h"

#include "dalle/util/torch_api.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "dalle/util/fs.h"

namespace dalle {

double psnr_from_mse(double mse) { return 10.0 * std::log10(1.0 / std::max(mse, 1e-12)); }

CodebookStats codebook_stats(const torch::Tensor& tokens, int vocab) {
  torch::Tensor counts = torch::bincount(tokens.flatten(), {}, vocab).to(torch::kFloat64);
  torch::Tensor p = counts / counts.sum();
  CodebookStats s;
  s.perplexity = std::exp(-(p * torch::log(p.clamp_min(1e-30))).sum().item<double>());
  s.used = (counts > 0).sum().item<double>() / vocab;
  return s;
}

VaeEvaluation vae_evaluate(Dvae& vae, const torch::Tensor& images_u8, int64_t batch,
                           const std::function<void(int64_t, const torch::Tensor&)>& on_batch) {
  torch::NoGradGuard no_grad;
  const int64_t n = images_u8.size(0);
  std::vector<torch::Tensor> tokens;
  double squared_error = 0;
  for (int64_t i = 0; i < n; i += batch) {
    const torch::Tensor images = images_u8.narrow(0, i, std::min(batch, n - i));
    const torch::Tensor t = vae->encode_images(images);
    const torch::Tensor target = images.to(t.device()).permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
    const torch::Tensor recon = vae->decode_tokens(t);
    squared_error += (recon - target).pow(2).sum().item<double>();
    tokens.push_back(t.cpu());
    if (on_batch) on_batch(i, recon.cpu());
  }
  VaeEvaluation e;
  e.images = n;
  if (n == 0) return e;
  e.psnr = psnr_from_mse(squared_error / static_cast<double>(images_u8.numel()));
  e.codebook = codebook_stats(torch::cat(tokens), vae->config().vocab);
  return e;
}

Image reconstruction_grid(Dvae& vae, const torch::Tensor& images_u8) {
  torch::NoGradGuard no_grad;
  const torch::Tensor recon = vae->decode_tokens(vae->encode_images(images_u8)).cpu();
  std::vector<Image> tiles;
  const torch::Tensor originals = images_u8.cpu();
  for (int64_t i = 0; i < originals.size(0); ++i) tiles.push_back(image_from_tensor(originals[i]));
  for (int64_t i = 0; i < recon.size(0); ++i) tiles.push_back(image_from_tensor(recon[i]));
  return image_grid(tiles, static_cast<int>(images_u8.size(0)));
}

void reconstructions_save(const ImageSet& set, int64_t first, const torch::Tensor& recon, const std::string& dir) {
  for (int64_t j = 0; j < recon.size(0); ++j) {
    char name[32];
    std::snprintf(name, sizeof(name), "%06lld", static_cast<long long>(first + j));
    const std::string stem = path_join(dir, name);
    image_save_png(stem + ".png", image_from_tensor(recon[j]),
                   {{"description", "dVAE reconstruction"}, {"source", set.paths[first + j]}});
    const std::vector<std::string>& captions = set.captions[first + j];
    if (captions.empty()) continue;
    std::string text;
    for (const std::string& c : captions) text += c + "\n";
    write_file_atomic(stem + ".txt", text);
  }
}

}  // namespace dalle

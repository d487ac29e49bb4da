// How well a dVAE round-trips images through its argmax tokens, as the prior will see them:
// PSNR of the reconstructions and how much of the codebook the tokens use.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>

#include "dalle/data/image_folder.h"
#include "dalle/io/image.h"
#include "dalle/vae/dvae.h"

namespace dalle {

struct CodebookStats {
  double perplexity = 0;  // exp(entropy) of the token histogram
  double used = 0;        // fraction of the vocabulary that occurs at least once
};

// From hard tokens of any shape.
CodebookStats codebook_stats(const torch::Tensor& tokens, int vocab);

struct VaeEvaluation {
  double psnr = 0;  // dB over all pixels, images in [0, 1]
  CodebookStats codebook;
  int64_t images = 0;
};

// Encodes uint8 images [N, H, W, 3] in batches (no gradients) and decodes their tokens.
// `on_batch(first, recon)`, when given, sees each batch's reconstructions (float [B, 3, H, W] in
// [0, 1], images first .. first + B - 1) as they are made.
VaeEvaluation vae_evaluate(Dvae& vae, const torch::Tensor& images_u8, int64_t batch = 64,
                           const std::function<void(int64_t, const torch::Tensor&)>& on_batch = {});

double psnr_from_mse(double mse);

// uint8 images [N, H, W, 3] in the top row over their argmax-token reconstructions below.
Image reconstruction_grid(Dvae& vae, const torch::Tensor& images_u8);

// Writes reconstructions `recon` (from vae_evaluate's on_batch) of images first .. first + B - 1
// of `set` as DIR/NNNNNN.png (input order) with their captions, one per line, as DIR/NNNNNN.txt:
// image-caption pairs that look like what the prior's samples decode to, e.g. to train a reranker on.
void reconstructions_save(const ImageSet& set, int64_t first, const torch::Tensor& recon, const std::string& dir);

}  // namespace dalle

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
VaeEvaluation vae_evaluate(Dvae& vae, const torch::Tensor& images_u8, int64_t batch = 64);

double psnr_from_mse(double mse);

// uint8 images [N, H, W, 3] in the top row over their argmax-token reconstructions below.
Image reconstruction_grid(Dvae& vae, const torch::Tensor& images_u8);

// Writes every image's argmax-token reconstruction as DIR/NNNNNN.png (input order) and its
// captions, one per line, as DIR/NNNNNN.txt: image-caption pairs that look like what the prior's
// samples decode to, e.g. to train a reranker on. `progress(done, total)` after each batch.
void reconstructions_save(Dvae& vae, const ImageSet& set, const std::string& dir, int64_t batch = 64,
                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace dalle

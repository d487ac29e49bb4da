// Caption -> images, as a library call the CLI (and later a server) shares: encode the prompt,
// sample N candidates' image tokens in batches (optionally continuing the first rows of an
// image's tokens), decode them with the dVAE, score them with the bundle's reranker and keep
// the best K (SPEC §5).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dalle/bundle/bundle.h"
#include "dalle/io/image.h"
#include "dalle/sample/sampler.h"

namespace dalle {

struct GenerateRequest {
  std::string prompt;
  int count = 4;   // candidates to sample (N)
  int keep = 0;    // best K to return, by rerank score (0 = all N)
  int batch = 4;   // candidates sampled together
  uint64_t seed = 0;
  SamplerSettings sampler;
  // Image-prompted sampling: the first `init_rows` rows of init_image's dVAE tokens are kept and
  // the rest sampled. An empty image (width 0) turns it off.
  Image init_image;
  int init_rows = 0;
};

struct GeneratedImage {
  Image image;
  int index = 0;       // candidate number, 0-based, in sampling order
  double score = 0;    // reranker's caption-image cosine similarity (0 when not reranked)
};

// Best first when the bundle has a reranker; otherwise the first K in sampling order.
// `on_progress(tokens_done, tokens_total)` reports image tokens sampled so far.
// Throws Error on bad requests (K > N, init rows out of range, ...).
std::vector<GeneratedImage> generate_images(Bundle& bundle, const GenerateRequest& request,
                                            const std::function<void(int64_t, int64_t)>& on_progress = {});

// The PNG tEXt chunks every generated image carries (the CLI's files and the server's alike):
// prompt, seed, sampler settings, model; for one candidate also its number, rank and rerank
// score (g null: the grid of them). `model_label` names the bundle, `init_image_name` the image
// prompt's file ("" for none).
PngText generation_png_text(const Bundle& bundle, const std::string& model_label, const GenerateRequest& request,
                            const std::string& init_image_name, const GeneratedImage* g, int rank);

// Lowercased, tokenised, truncated and padded as SPEC §2: [1, text_len] int64.
torch::Tensor encode_caption(const Bundle& bundle, const std::string& caption);

// The first `rows` grid rows of the image's argmax dVAE tokens, flattened: [1, rows * grid].
torch::Tensor init_image_tokens(Bundle& bundle, const Image& image, int rows);

}  // namespace dalle

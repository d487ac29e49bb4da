// Caption -> images, as a library call the CLI (and later a server) shares: encode the prompt,
// sample image tokens in batches, decode them with the dVAE.
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
  int count = 4;   // images to make
  int batch = 4;   // images sampled together
  uint64_t seed = 0;
  SamplerSettings sampler;
};

struct GeneratedImage {
  Image image;
  int index = 0;
};

// `on_progress(tokens_done, tokens_total)` reports image tokens sampled so far.
std::vector<GeneratedImage> generate_images(Bundle& bundle, const GenerateRequest& request,
                                            const std::function<void(int64_t, int64_t)>& on_progress = {});

// Lowercased, tokenised, truncated and padded as SPEC §2: [1, text_len] int64.
torch::Tensor encode_caption(const Bundle& bundle, const std::string& caption);

}  // namespace dalle

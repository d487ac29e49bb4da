// `dalle eval fid`: Fréchet distance (and KID) between images a bundle draws from a dataset's
// captions and that dataset's images, at several Gaussian blur radii as the paper's Fig. 9
// does. Features are Inception-v3 pool3 from a weights file the user converted (eval/inception.h),
// so the figures compare with published FID; without one, the bundle's reranker image tower,
// reported as `fd_rerank` and never called FID.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dalle/bundle/bundle.h"
#include "dalle/sample/sampler.h"

namespace dalle {

struct FidEvalOptions {
  int64_t count = 5000;                     // real images (and as many generated, one per caption)
  std::vector<double> blur = {0, 1, 2, 4, 8};  // Gaussian sigmas in pixels, applied to both sets
  std::string inception;                    // Inception-v3 safetensors; "" = the reranker's features
  int candidates = 1;                       // > 1: keep the reranker's best of this many per caption
  int batch = 32;                           // captions sampled together
  uint64_t seed = 0;
  SamplerSettings sampler;
  int kid_subsets = 100;
  int kid_subset_size = 1000;
  std::function<void(const std::string& phase, int64_t done, int64_t total)> progress;
};

// Writes out/generated/NNNNNN.png (kept: a rerun with the same settings only samples what is
// missing), out/fid.json, out/fid.md and out/fid_blur.png. Returns the report.
nlohmann::json fid_eval(Bundle& bundle, const std::string& real_data, const FidEvalOptions& options,
                        const std::string& out);

}  // namespace dalle

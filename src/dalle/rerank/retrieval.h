// Caption -> image retrieval accuracy, the reranker's held-out score: held-out pairs are cut
// into pools of `pool` pairs; within a pool each caption ranks the pool's images, and a hit is
// its own image at rank 1 (top-1) or within the first 5 (top-5). Chance is 1/pool and 5/pool.
#pragma once
#include <torch/types.h>

namespace dalle {

struct RetrievalHits {
  int64_t top1 = 0, top5 = 0, pairs = 0;
};

// text, image [N, E] normalised embeddings of N matching pairs; the last N % pool are unused
// (all N when N < pool, as one smaller pool).
RetrievalHits retrieval_hits(const torch::Tensor& text, const torch::Tensor& image, int64_t pool);

}  // namespace dalle

#include "dalle/rerank/retrieval.h"

#include "dalle/util/torch_api.h"

namespace dalle {

RetrievalHits retrieval_hits(const torch::Tensor& text, const torch::Tensor& image, int64_t pool) {
  RetrievalHits hits;
  const int64_t n = text.size(0);
  if (n < pool) pool = n;
  for (int64_t start = 0; pool > 0 && start + pool <= n; start += pool) {
    const torch::Tensor sims = torch::matmul(text.narrow(0, start, pool), image.narrow(0, start, pool).t());
    const torch::Tensor own = sims.diagonal().unsqueeze(1);
    // Rank = how many images beat the caption's own one.
    const torch::Tensor rank = (sims > own).sum(1);
    hits.top1 += rank.eq(0).sum().item<int64_t>();
    hits.top5 += rank.lt(5).sum().item<int64_t>();
    hits.pairs += pool;
  }
  return hits;
}

}  // namespace dalle

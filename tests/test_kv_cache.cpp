// The windowed KV cache against its obviously-correct twin, a full forward pass over the whole
// sequence: at every decoding step, for every mask type, batch > 1, windows that wrap.
#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include "dalle/prior/kv_cache.h"
#include "dalle/prior/transformer.h"
#include "test_util.h"

using namespace dalle;

namespace {

PriorConfig cache_prior(int layers, int conv_kernel) {
  PriorConfig c = test::toy_prior(layers);
  c.text_len = 5;
  c.conv_kernel = conv_kernel;
  return c;
}

// Feeds `image` through prefill (first `given` tokens) and steps (`indexed`: step_indexed, the
// slot read on the device); compares each step's logits with the full recompute's.
void expect_cached_equals_full(Prior& prior, const torch::Tensor& text, const torch::Tensor& image, int64_t given,
                               bool indexed = false) {
  torch::NoGradGuard g;
  const int64_t n = image.size(1);
  const torch::Tensor full = prior->forward(text, image).image;
  KvCache cache = prior->make_cache(text.size(0));
  KvCache::SlotIndex slot = cache.slot_index();
  torch::Tensor logits = prior->prefill(text, cache, given ? image.narrow(1, 0, given) : torch::Tensor());
  for (int64_t i = given; i < n; ++i) {
    ASSERT_TRUE(torch::allclose(logits, full.select(1, i), 1e-4, 1e-4)) << "token " << i << " of " << n;
    if (i + 1 == n) break;
    if (!indexed) {
      logits = prior->step(image.select(1, i), i, cache);
      continue;
    }
    cache.set_slot_index(slot, i + 1);
    logits = prior->step_indexed(image.select(1, i).contiguous(), slot, cache);
    cache.length += 1;
  }
}

}  // namespace

TEST(KvCache, RingSizesAreTheMasksReach) {
  const MaskShape s{4, 6, 7, 5};  // 6 rows of 7, conv radius 2
  EXPECT_EQ(KvCache::ring_size(MaskType::row, s), 8);
  EXPECT_EQ(KvCache::ring_size(MaskType::conv, s), 2 * 7 + 2 + 1);
  // Never more than the image.
  EXPECT_EQ(KvCache::ring_size(MaskType::conv, MaskShape{4, 2, 2, 11}), 4);
  // Every offset a mask allows fits in its ring.
  for (MaskType type : {MaskType::row, MaskType::conv})
    for (int q = 0; q < 42; ++q)
      for (int k = 0; k <= q; ++k)
        if (image_mask_allows(type, s, q, k)) {
          EXPECT_LT(q - k, KvCache::ring_size(type, s));
        }
}

TEST(KvCache, CachedLogitsEqualFullRecomputeForEveryMaskType) {
  // 1 layer: conv only; 3: row, column, conv; 6: row, column, row, row, column... conv. On every
  // device: the cache's buffers and the masks live where the model does.
  for (const c10::Device& device : test::devices())
    for (int layers : {1, 3, 6})
      for (int kernel : {3, 5}) {
        SCOPED_TRACE(device.str() + ", layers " + std::to_string(layers) + ", conv kernel " + std::to_string(kernel));
        torch::manual_seed(layers * 10 + kernel);
        Prior prior(cache_prior(layers, kernel), 4, 5, 12);  // 4x5 grid: rings of 6 and 8 wrap
        prior->eval();
        prior->to(device);
        const torch::Tensor text = torch::randint(0, 25, {3, 5}, torch::kLong).to(device);
        const torch::Tensor image = torch::randint(0, 12, {3, 20}, torch::kLong).to(device);
        expect_cached_equals_full(prior, text, image, 0);
        SCOPED_TRACE("indexed steps");
        expect_cached_equals_full(prior, text, image, 0, /*indexed=*/true);
      }
}

TEST(KvCache, PrefilledInitRowsContinueLikeFullRecompute) {
  torch::manual_seed(3);
  Prior prior(cache_prior(5, 3), 5, 4, 12);
  prior->eval();
  const torch::Tensor text = torch::randint(0, 25, {2, 5}, torch::kLong);
  const torch::Tensor image = torch::randint(0, 12, {2, 20}, torch::kLong);
  for (int64_t rows : {1, 2, 4}) {
    SCOPED_TRACE("init rows " + std::to_string(rows));
    expect_cached_equals_full(prior, text, image, rows * 4);
  }
}

TEST(KvCache, HoldsTheWindowsNotTheSequence) {
  // The default conv kernel on a 32x32 grid: row rings of 33, conv rings of 166, columns of 32.
  const PriorConfig c = cache_prior(4, 11);
  Prior prior(c, 32, 32, 16);
  const KvCache cache = prior->make_cache(2);
  const int64_t dense = 2 * int64_t(4) * 2 * c.heads * (c.text_len + 1024) * (c.d_model / c.heads) * 4;
  EXPECT_LT(cache.bytes() * 2, dense);  // column layers keep every earlier row of a column
}

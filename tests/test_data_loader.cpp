// Augmentation (SPEC §1 and §3, scaled) and the streaming loader: determinism, ranges, every
// sample once per epoch, rank sharding, and exact resume mid-epoch.
#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include <algorithm>
#include <set>

#include "dalle/data/augment.h"
#include "dalle/data/loader.h"
#include "dalle/data/token_loader.h"
#include "dalle/data/token_set.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_data_util.h"

using namespace dalle;
namespace fs = std::filesystem;

TEST(DataAugment, SameSeedSamePixelsOtherSeedOtherPixels) {
  const Image img = test::pattern_image(120, 90, 1);
  for (AugmentKind kind : {AugmentKind::dvae, AugmentKind::prior}) {
    const Image a = augment_image(img, 64, kind, 7);
    EXPECT_EQ(a.width, 64);
    EXPECT_EQ(a.height, 64);
    EXPECT_EQ(a.pixels, augment_image(img, 64, kind, 7).pixels);
    bool differs = false;
    for (uint64_t s = 8; s < 16 && !differs; ++s) differs = augment_image(img, 64, kind, s).pixels != a.pixels;
    EXPECT_TRUE(differs);
  }
  EXPECT_NE(augment_seed(1, 0, 5), augment_seed(1, 1, 5));
  EXPECT_NE(augment_seed(1, 0, 5), augment_seed(1, 0, 6));
  EXPECT_NE(augment_seed(1, 0, 5), augment_seed(2, 0, 5));
}

TEST(DataAugment, DvaeRangesFollowThePaperScaledToTheTarget) {
  // 300x200 source, target 64: square crop of 200 anywhere, resize side in
  // [min(200, 72), min(200, 96)] = [72, 96], then a 64 crop anywhere, flipped about half the time.
  int flips = 0, min_resize = 1000, max_resize = 0, min_x = 1000, max_x = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    AugmentRng rng(seed);
    const AugmentParams p = augment_params(300, 200, 64, AugmentKind::dvae, rng);
    ASSERT_EQ(p.crop_side, 200);
    ASSERT_GE(p.crop_x, 0);
    ASSERT_LE(p.crop_x, 100);
    ASSERT_EQ(p.crop_y, 0);
    min_resize = std::min(min_resize, p.resize_side);
    max_resize = std::max(max_resize, p.resize_side);
    min_x = std::min(min_x, p.crop_x);
    max_x = std::max(max_x, p.crop_x);
    ASSERT_LE(p.x + 64, p.resize_side);
    ASSERT_LE(p.y + 64, p.resize_side);
    flips += p.flip;
  }
  EXPECT_EQ(min_resize, 72);
  EXPECT_EQ(max_resize, 96);
  EXPECT_LE(min_x, 2);
  EXPECT_GE(max_x, 98);
  EXPECT_GT(flips, 900);
  EXPECT_LT(flips, 1100);
  // At the paper's size: [288, 384] for a 512 image and target 256.
  AugmentRng rng(3);
  for (int i = 0; i < 200; ++i) {
    const AugmentParams p = augment_params(512, 512, 256, AugmentKind::dvae, rng);
    ASSERT_GE(p.resize_side, 288);
    ASSERT_LE(p.resize_side, 384);
  }
}

TEST(DataAugment, PriorCropsNearTheCentreWithoutFlips) {
  // 300x200, target 64: slack 100, offset 50 +- 12; resize side in [64, min(200, 72)].
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    AugmentRng rng(seed);
    const AugmentParams p = augment_params(300, 200, 64, AugmentKind::prior, rng);
    ASSERT_GE(p.crop_x, 50 - 12);
    ASSERT_LE(p.crop_x, 50 + 12);
    ASSERT_GE(p.resize_side, 64);
    ASSERT_LE(p.resize_side, 72);
    ASSERT_FALSE(p.flip);
  }
  // Small sources are enlarged to the target; the crop then has no freedom.
  AugmentRng rng(1);
  const AugmentParams small = augment_params(40, 50, 64, AugmentKind::prior, rng);
  EXPECT_EQ(small.resize_side, 64);
  EXPECT_EQ(small.x, 0);
  EXPECT_EQ(small.y, 0);
}

TEST(DataAugment, IdentityAndFlipAreExact) {
  const Image img = test::pattern_image(32, 32, 4);
  AugmentParams p;
  p.crop_side = p.resize_side = 32;
  EXPECT_EQ(augment_apply(img, p, 32).pixels, img.pixels);
  p.flip = true;
  const Image f = augment_apply(img, p, 32);
  for (int y = 0; y < 32; y += 7)
    for (int x = 0; x < 32; x += 5)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(f.at(x, y)[c], img.at(31 - x, y)[c]);
  p.flip = false;
  p.x = 1;
  EXPECT_THROW(augment_apply(img, p, 32), Error);
}

namespace {

// 4 shards x 10 samples: 32x32 images, caption "sample N" (plus a second line for even N).
fs::path make_shards(const std::string& name, bool with_bad = false) {
  const fs::path dir = test::scratch_dir(name);
  for (int s = 0; s < 4; ++s) {
    std::vector<std::pair<std::string, std::vector<uint8_t>>> members;
    for (int i = s * 10; i < s * 10 + 10; ++i) {
      char key[16];
      std::snprintf(key, sizeof(key), "%06d", i);
      std::string caption = "sample " + std::to_string(i) + "\n";
      if (i % 2 == 0) caption += "sample " + std::to_string(i) + "\n";
      members.push_back({std::string(key) + ".png", test::png_bytes(32, 32, i)});
      members.push_back({std::string(key) + ".txt", test::bytes_of(caption)});
    }
    if (with_bad && s == 2) {
      members.push_back({"bad.png", test::truncated(test::png_bytes(32, 32, 99), 0.5)});
      members.push_back({"bad.txt", test::bytes_of("broken")});
    }
    char shard[32];
    std::snprintf(shard, sizeof(shard), "shard-%06d.tar", s);
    test::write_tar(dir / shard, members);
  }
  return dir;
}

LoaderOptions small_options(const fs::path& dir) {
  LoaderOptions o;
  o.data = (dir / "shard-{000000..000003}.tar").string();
  o.image_size = 24;
  o.batch_size = 8;
  o.workers = 2;
  o.prefetch = 2;
  o.shuffle_buffer = 16;
  o.seed = 5;
  return o;
}

int sample_number(const std::string& caption) { return std::stoi(caption.substr(7)); }

}  // namespace

TEST(DataLoader, EveryEpochDeliversEverySampleOnceInAShuffledOrder) {
  const fs::path dir = make_shards("loader_epoch");
  Loader loader(small_options(dir));
  std::vector<int> epoch0, epoch1;
  for (int b = 0; b < 5; ++b) {
    const LoaderBatch batch = loader.next();
    EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{8, 24, 24, 3}));
    for (const auto& c : batch.captions) epoch0.push_back(sample_number(c));
    if (b == 4) {
      EXPECT_EQ(batch.position, (LoaderPosition{0, 40}));
    }
  }
  for (int b = 0; b < 5; ++b)
    for (const auto& c : loader.next().captions) epoch1.push_back(sample_number(c));
  EXPECT_EQ(std::set<int>(epoch0.begin(), epoch0.end()).size(), 40u);
  EXPECT_EQ(std::set<int>(epoch1.begin(), epoch1.end()).size(), 40u);
  std::vector<int> sorted(40);
  for (int i = 0; i < 40; ++i) sorted[static_cast<size_t>(i)] = i;
  EXPECT_NE(epoch0, sorted);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_EQ(loader.stats().skipped, 0);
}

TEST(DataLoader, SameBatchesForAnyWorkerCountAndExactResumeMidEpoch) {
  const fs::path dir = make_shards("loader_resume", /*with_bad=*/true);
  LoaderOptions o = small_options(dir);
  std::vector<LoaderBatch> reference;
  {
    Loader a(o);
    for (int b = 0; b < 9; ++b) reference.push_back(a.next());
    EXPECT_GE(a.stats().skipped, 1) << "the truncated PNG";
  }
  o.workers = 3;
  o.prefetch = 5;
  {
    Loader c(o);
    for (int b = 0; b < 9; ++b) {
      const LoaderBatch batch = c.next();
      ASSERT_TRUE(torch::equal(batch.images, reference[static_cast<size_t>(b)].images)) << b;
      ASSERT_EQ(batch.captions, reference[static_cast<size_t>(b)].captions) << b;
    }
  }
  // Resume after batch 3 (mid-epoch 0) and run across the epoch boundary.
  Loader resumed(o, reference[2].position);
  for (int b = 3; b < 9; ++b) {
    const LoaderBatch batch = resumed.next();
    ASSERT_TRUE(torch::equal(batch.images, reference[static_cast<size_t>(b)].images)) << b;
    ASSERT_EQ(batch.captions, reference[static_cast<size_t>(b)].captions) << b;
    ASSERT_EQ(batch.position, reference[static_cast<size_t>(b)].position) << b;
  }
}

TEST(DataLoader, RanksSplitTheDataWithoutOverlap) {
  const fs::path dir = make_shards("loader_ranks");
  // By shard (4 shards, 2 ranks) and by sample (a folder of the same images, 2 ranks).
  const fs::path folder = dir / "folder";
  make_dirs(folder.string());
  for (int i = 0; i < 40; ++i) {
    test::write_bytes(folder / ("img" + std::to_string(i) + ".png"), test::png_bytes(32, 32, i));
    test::write_text(folder / ("img" + std::to_string(i) + ".txt"), "sample " + std::to_string(i));
  }
  for (const std::string& data : {(dir / "shard-{000000..000003}.tar").string(), folder.string()}) {
    std::set<int> all;
    for (int rank = 0; rank < 2; ++rank) {
      LoaderOptions o = small_options(dir);
      o.data = data;
      o.world = 2;
      o.rank = rank;
      o.batch_size = 4;
      Loader loader(o);
      std::set<int> mine;
      for (int b = 0; b < 5; ++b)
        for (const auto& c : loader.next().captions) mine.insert(sample_number(c));
      EXPECT_EQ(mine.size(), 20u) << data << " rank " << rank;
      for (int v : mine) EXPECT_TRUE(all.insert(v).second) << "sample " << v << " on both ranks";
    }
    EXPECT_EQ(all.size(), 40u) << data;
  }
  LoaderOptions bad = small_options(dir);
  bad.rank = 2;
  bad.world = 2;
  EXPECT_THROW(Loader{bad}, Error);
}

TEST(DataLoader, UnreadableDataIsAnErrorNotAHang) {
  const fs::path dir = test::scratch_dir("loader_missing");
  LoaderOptions o;
  o.data = (dir / "shard-{000000..000001}.tar").string();
  o.batch_size = 2;
  Loader loader(o);
  EXPECT_THROW(loader.next(), Error);
}

// The held-out share is chosen by name, so train and held-out never meet, together they are the
// data, and the choice is the same for any seed or shard order.
TEST(DataLoader, HeldOutSamplesAreDisjointFromTrainingAndFixedByName) {
  const fs::path dir = make_shards("loader_holdout");
  LoaderOptions o = small_options(dir);
  o.holdout = 0.25;
  o.batch_size = 1;
  std::set<int> train;
  {
    Loader loader(o);
    for (;;) {
      const LoaderBatch b = loader.next();
      if (b.position.epoch > 0) break;
      train.insert(sample_number(b.captions[0]));
    }
  }
  std::set<int> held;
  for (uint64_t seed : {5, 9}) {
    o.seed = seed;
    const HeldOutSet h = loader_read_holdout(o, 1000);
    std::set<int> these;
    for (const auto& c : h.captions) these.insert(sample_number(c));
    EXPECT_EQ(static_cast<size_t>(h.images.size(0)), these.size());
    if (!held.empty()) {
      EXPECT_EQ(these, held) << "the split depends on the seed";
    }
    held = these;
  }
  EXPECT_GT(held.size(), 3u);  // about a quarter of 40
  EXPECT_LT(held.size(), 20u);
  for (int v : held) EXPECT_EQ(train.count(v), 0u) << "sample " << v << " is in both";
  EXPECT_EQ(train.size() + held.size(), 40u);
  EXPECT_EQ(loader_read_holdout(o, 2).images.size(0), 2);  // capped
}

namespace {

// A token folder of `shards` shards x 10 samples; sample i has tokens all equal to i and the
// caption "sample i".
fs::path make_token_folder(const std::string& name, int shards) {
  const fs::path dir = test::scratch_dir(name);
  TokenSet set;
  set.tokens = torch::arange(shards * 10, torch::kLong).view({-1, 1, 1}).expand({shards * 10, 2, 2}).contiguous();
  for (int i = 0; i < shards * 10; ++i) set.captions.push_back({"sample " + std::to_string(i)});
  token_set_write(dir.string(), set, /*shard_size=*/10);
  return dir;
}

int token_sample(const torch::Tensor& tokens) { return static_cast<int>(tokens.flatten()[0].item<int64_t>()); }

}  // namespace

TEST(TokenLoader, EveryEpochOnceShuffledAndExactResume) {
  const fs::path dir = make_token_folder("token_loader", 4);
  TokenLoaderOptions o;
  o.dir = dir.string();
  o.batch_size = 8;
  o.shuffle_buffer = 16;
  o.seed = 3;
  TokenLoader loader(o);
  std::vector<TokenBatch> batches;
  std::vector<int> epoch0;
  for (int b = 0; b < 10; ++b) batches.push_back(loader.next());
  for (int b = 0; b < 5; ++b)
    for (int64_t i = 0; i < 8; ++i) {
      const int v = token_sample(batches[static_cast<size_t>(b)].tokens[i]);
      EXPECT_EQ(batches[static_cast<size_t>(b)].captions[static_cast<size_t>(i)][0], "sample " + std::to_string(v));
      epoch0.push_back(v);
    }
  EXPECT_EQ(std::set<int>(epoch0.begin(), epoch0.end()).size(), 40u);
  EXPECT_FALSE(std::is_sorted(epoch0.begin(), epoch0.end()));
  EXPECT_EQ(batches[4].position, (LoaderPosition{0, 40}));
  // Resumed mid-epoch, across the epoch boundary.
  TokenLoader resumed(o, batches[2].position);
  for (size_t b = 3; b < 10; ++b) {
    const TokenBatch batch = resumed.next();
    ASSERT_TRUE(torch::equal(batch.tokens, batches[b].tokens)) << b;
    ASSERT_EQ(batch.position, batches[b].position) << b;
  }
}

TEST(TokenLoader, RanksReadDisjointShardsAndHeldOutIsApart) {
  const fs::path dir = make_token_folder("token_ranks", 4);
  std::set<int> all;
  for (int rank = 0; rank < 2; ++rank) {
    TokenLoaderOptions o;
    o.dir = dir.string();
    o.batch_size = 4;
    o.rank = rank;
    o.world = 2;
    TokenLoader loader(o);
    std::set<int> mine;
    for (int b = 0; b < 5; ++b) {
      const TokenBatch batch = loader.next();
      for (int64_t i = 0; i < 4; ++i) mine.insert(token_sample(batch.tokens[i]));
    }
    EXPECT_EQ(mine.size(), 20u) << "rank " << rank;
    for (int v : mine) EXPECT_TRUE(all.insert(v).second) << "sample " << v << " on both ranks";
  }
  EXPECT_EQ(all.size(), 40u);

  TokenLoaderOptions o;
  o.dir = dir.string();
  o.batch_size = 1;
  o.holdout = 0.3;
  const TokenBatch held = token_loader_read_holdout(o, 100);
  ASSERT_TRUE(held.tokens.defined());
  std::set<int> held_set;
  for (int64_t i = 0; i < held.tokens.size(0); ++i) held_set.insert(token_sample(held.tokens[i]));
  TokenLoader train(o);
  std::set<int> train_set;
  for (;;) {
    const TokenLoader::Sample s = train.next_sample();
    if (s.position.epoch > 0) break;
    train_set.insert(token_sample(s.tokens));
  }
  for (int v : held_set) EXPECT_EQ(train_set.count(v), 0u) << v;
  EXPECT_EQ(held_set.size() + train_set.size(), 40u);
  EXPECT_GT(held_set.size(), 3u);
}

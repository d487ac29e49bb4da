// The contrastive reranker: its loss against hand-computed values, retrieval counting, the
// self-describing weights file, and a tiny model trained on shapes that beats chance.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "dalle/util/torch_api.h"

#include <cmath>
#include <fstream>

#include "dalle/data/shapes.h"
#include "dalle/rerank/contrastive_loss.h"
#include "dalle/rerank/rerank_trainer.h"
#include "dalle/rerank/reranker.h"
#include "dalle/rerank/retrieval.h"
#include "dalle/text/tokenizer.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_util.h"

using namespace dalle;

namespace {

// A reranker small enough to build in microseconds.
RerankConfig toy_rerank_config() {
  RerankConfig c;
  c.text_len = 7;
  c.text_layers = 1;
  c.text_width = 16;
  c.text_heads = 2;
  c.image_size = 16;
  c.image_width = 8;
  c.embed_dim = 12;
  return c;
}

}  // namespace

TEST(Rerank, ContrastiveLossMatchesAHandComputedValue) {
  // Captions (1,0), (0,1); images (1,0), (0.6,0.8); scale e^log(2) = 2.
  const torch::Tensor text = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f}).view({2, 2});
  const torch::Tensor image = torch::tensor({1.0f, 0.0f, 0.6f, 0.8f}).view({2, 2});
  // logits = 2 * text @ image^T = [[2, 1.2], [0, 1.6]]
  const double caption_to_image = ((std::log(std::exp(2.0) + std::exp(1.2)) - 2.0) +
                                   (std::log(std::exp(0.0) + std::exp(1.6)) - 1.6)) / 2;
  const double image_to_caption = ((std::log(std::exp(2.0) + std::exp(0.0)) - 2.0) +
                                   (std::log(std::exp(1.2) + std::exp(1.6)) - 1.6)) / 2;
  const double expected = (caption_to_image + image_to_caption) / 2;
  EXPECT_NEAR(expected, 0.29874, 1e-4);
  EXPECT_NEAR(contrastive_loss(text, image, torch::full({}, std::log(2.0))).item<double>(), expected, 1e-5);
}

TEST(Rerank, RetrievalCountsRanksWithinPools) {
  // Pool 1 (pairs 0-2): caption 0 and 2 find their image first, caption 1's is ranked third.
  const torch::Tensor text = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.0f, 1.0f, 0.0f}).view({4, 2});
  const torch::Tensor image = torch::tensor({1.0f, 0.0f, 0.0f, -1.0f, -1.0f, 0.1f, 0.0f, 1.0f}).view({4, 2});
  const RetrievalHits hits = retrieval_hits(text, image, 3);
  EXPECT_EQ(hits.pairs, 3);  // the 4th pair does not fill a pool
  EXPECT_EQ(hits.top1, 2);
  EXPECT_EQ(hits.top5, 3);
}

TEST(Rerank, WeightsFileCarriesItsConfigAndVocabulary) {
  const RerankConfig c = toy_rerank_config();
  torch::manual_seed(1);
  Reranker model(c, 50);
  const std::string path = (test::scratch_dir("rerank_io") / "rerank.safetensors").string();
  reranker_save(path, model, 3, "0123");
  std::string fingerprint;
  Reranker loaded = reranker_load(path, &fingerprint);
  EXPECT_EQ(fingerprint, "0123");
  EXPECT_EQ(loaded->text_vocab(), 50);
  EXPECT_EQ(loaded->config().embed_dim, 12);
  torch::NoGradGuard g;
  const torch::Tensor ids = torch::randint(0, 51, {2, 7}, torch::kLong);
  const torch::Tensor images = torch::rand({2, 3, 24, 24});  // resized to 16
  model->eval();
  EXPECT_TRUE(torch::allclose(model->embed_text(ids), loaded->embed_text(ids)));
  const torch::Tensor e = loaded->embed_images(images);
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{2, 12}));
  EXPECT_NEAR(e.norm(2, 1)[0].item<double>(), 1.0, 1e-5);
  // The empty caption (all padding) still embeds to a finite vector.
  EXPECT_TRUE(loaded->embed_text(torch::full({1, 7}, 50, torch::kLong)).isfinite().all().item<bool>());
}

// Two tokenizers of the same size give different ids for the same caption: a reranker records
// the fingerprint of its own and refuses the other, instead of reading wrong ids silently.
TEST(Rerank, ATokenizerOfTheSameSizeButOtherMergesIsRefused) {
  TokenizerTrainOptions options;
  options.vocab_size = 262;  // 256 bytes, 5 merges, <|endoftext|>: both corpora have that many
  const Tokenizer a = Tokenizer::train({"a red circle", "a blue square", "a red square above a blue circle"}, options);
  const Tokenizer b = Tokenizer::train({"the green star", "the yellow heart", "a green heart left of a star"}, options);
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  EXPECT_NE(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint().size(), 32u);
  // The fingerprint follows the contents, not the object: saved and loaded again, it is the same.
  const std::string tok_path = (test::scratch_dir("rerank_fp") / "tokenizer.json").string();
  a.save(tok_path);
  EXPECT_EQ(Tokenizer::load(tok_path).fingerprint(), a.fingerprint());

  const RerankConfig c = toy_rerank_config();
  Reranker model(c, a.vocab_size());
  const std::string path = (test::scratch_dir("rerank_fp_model") / "rerank.safetensors").string();
  reranker_save(path, model, 1, a.fingerprint());
  std::string recorded;
  Reranker loaded = reranker_load(path, &recorded);
  EXPECT_NO_THROW(reranker_check_tokenizer(loaded, recorded, a, path));
  try {
    reranker_check_tokenizer(loaded, recorded, b, path);
    FAIL() << "a different tokenizer of the same size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another tokenizer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A reranker saved before fingerprints existed is matched by size, as then.
  EXPECT_NO_THROW(reranker_check_tokenizer(loaded, "", b, path));
  TokenizerTrainOptions bigger = options;
  bigger.vocab_size = 258;
  EXPECT_THROW(reranker_check_tokenizer(loaded, "", Tokenizer::train({"a red circle"}, bigger), path), Error);
}

TEST(Rerank, TinyRerankerTrainedOnShapesBeatsChance) {
  // One thread: the model is tiny, and on a loaded machine a second OpenMP thread that is
  // descheduled stalls every parallel region (20x slower here).
  torch::set_num_threads(1);
  const auto dir = test::scratch_dir("rerank_train");
  ShapesOptions so;
  so.count = 1200;
  so.size = 16;
  so.seed = 3;
  shapes_write((dir / "shapes").string(), so);
  ModelConfig config;
  RerankConfig& c = config.rerank;
  c.text_len = 12;
  c.text_layers = 1;
  c.text_width = 32;
  c.text_heads = 2;
  c.image_size = 16;
  c.image_width = 16;
  c.embed_dim = 32;
  c.batch = 64;
  c.steps = 400;
  c.lr = 3e-3;
  c.warmup_steps = 10;
  c.ema_decay = 0.8;
  c.val_pairs = 200;
  c.val_fraction = 0.25;  // about 300 of the 1,200 pairs are held out; 200 of them are scored
  config.prior.text_vocab = 300;
  RerankTrainOptions opt;
  opt.data = (dir / "shapes").string();
  opt.out = (dir / "run").string();
  opt.quiet = true;
  opt.val_every = 1000;
  const RerankTrainResult r = rerank_train(config, opt);
  EXPECT_LT(r.last_loss, r.first_loss);
  EXPECT_EQ(r.val.pool, 100);
  EXPECT_EQ(r.val.pairs, 200);
  // Chance is 1% top-1 and 5% top-5 in pools of 100.
  EXPECT_GT(r.val.top1, 0.03);
  EXPECT_GT(r.val.top5, 0.15);
  EXPECT_TRUE(path_exists((dir / "run" / kRerankWeightsFile).string()));
  EXPECT_TRUE(path_exists((dir / "run" / "metrics.jsonl").string()));
}

// The pairs stream (data/loader.h): a run resumed mid-epoch equals the straight run, and the
// number of decoding threads changes nothing.
TEST(Rerank, ResumedAndMultiWorkerRunsEqualTheStraightRun) {
  torch::set_num_threads(1);
  const auto dir = test::scratch_dir("rerank_resume");
  ShapesOptions so;
  so.count = 120;
  so.size = 16;
  shapes_write((dir / "shapes").string(), so);
  ModelConfig config;
  RerankConfig& c = config.rerank;
  c.text_len = 8;
  c.text_layers = 1;
  c.text_width = 16;
  c.text_heads = 2;
  c.image_size = 16;
  c.image_width = 8;
  c.embed_dim = 16;
  c.batch = 16;
  c.warmup_steps = 2;
  c.val_pairs = 0;
  config.prior.text_vocab = 300;
  auto run = [&](const std::string& name, int64_t steps, int workers, bool resume) {
    RerankTrainOptions o;
    o.data = (dir / "shapes").string();
    o.out = (dir / name).string();
    o.steps = steps;
    o.workers = workers;
    o.resume = resume;
    o.quiet = true;
    o.save_every = 3;
    return rerank_train(config, o);
  };
  c.steps = 6;
  run("straight", 6, 1, false);
  run("workers", 6, 3, false);
  run("resumed", 3, 2, false);
  run("resumed", 6, 2, true);
  auto losses = [&](const std::string& name) {
    std::vector<double> out;
    std::ifstream in((dir / name / "metrics.jsonl").string());
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return out;
  };
  const auto straight = losses("straight");
  ASSERT_EQ(straight.size(), 6u);
  EXPECT_EQ(losses("workers"), straight);
  EXPECT_EQ(losses("resumed"), straight);
}

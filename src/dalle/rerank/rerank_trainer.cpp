#include "dalle/rerank/rerank_trainer.h"

#include "dalle/util/torch_api.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "dalle/bundle/bundle.h"
#include "dalle/data/image_folder.h"
#include "dalle/rerank/contrastive_loss.h"
#include "dalle/rerank/reranker.h"
#include "dalle/rerank/retrieval.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/train/ema.h"
#include "dalle/train/metrics_log.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle {

namespace {

constexpr int kRetrievalPool = 100;

// Decay on matrices and conv kernels only, as CLIP (not on gains, biases, embeddings, temperature).
bool decays(const std::string& name) {
  if (name.find("emb") != std::string::npos || name.find("norm") != std::string::npos ||
      name.find("ln") != std::string::npos)
    return false;
  return name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
}

double lr_at(const RerankConfig& c, int64_t step, int64_t steps) {
  if (step < c.warmup_steps) return c.lr * (step + 1) / static_cast<double>(c.warmup_steps);
  const double t = static_cast<double>(step - c.warmup_steps) / std::max<int64_t>(1, steps - c.warmup_steps);
  return c.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t))));
}

torch::Tensor to_float_images(const torch::Tensor& u8) { return u8.permute({0, 3, 1, 2}).to(torch::kFloat32) / 255; }

}  // namespace

RerankTrainResult rerank_train(const ModelConfig& preset, const RerankTrainOptions& opt) {
  make_dirs(opt.out);
  const std::string ckpt_path = path_join(opt.out, kCheckpointFile);
  if (!opt.resume && path_exists(ckpt_path))
    throw file_error(opt.out, "already holds a training run; pass --resume to continue it or pick a new -o");
  ModelConfig config = opt.resume ? config_load(path_join(opt.out, kConfigFile)) : preset;
  RerankConfig& rc = config.rerank;
  if (opt.steps >= 0) rc.steps = opt.steps;

  ProgressBar load_bar("loading images", 0, "img");
  ImageSet data = image_set_load(opt.data, rc.image_size, /*require_captions=*/true, opt.threads, opt.max_images,
                                 [&](int64_t done, int64_t total) {
                                   if (opt.quiet) return;
                                   load_bar.set_total(total);
                                   load_bar.update(done);
                                 });
  if (!opt.quiet) load_bar.finish();
  const int64_t n_all = data.images.size(0);
  const int64_t n_val = std::min<int64_t>(rc.val_pairs, n_all / 5);
  const int64_t n_train = n_all - n_val;
  if (n_train < rc.batch)
    throw Error("rerank: " + std::to_string(n_train) + " training pairs, fewer than rerank.batch = " +
                std::to_string(rc.batch));

  const Tokenizer tokenizer = tokenizer_for_run(path_join(opt.out, config.tokenizer_file), opt.resume,
                                                opt.tokenizer, data.captions, config.prior.text_vocab);
  const int vocab = tokenizer.vocab_size();

  // Every caption encoded once: row offsets into one id table.
  std::vector<std::string> flat;
  std::vector<int64_t> first_caption;
  for (const auto& c : data.captions) {
    first_caption.push_back(static_cast<int64_t>(flat.size()));
    flat.insert(flat.end(), c.begin(), c.end());
  }
  first_caption.push_back(static_cast<int64_t>(flat.size()));
  const torch::Tensor caption_ids = rerank_encode_captions(tokenizer, flat, rc, vocab);

  torch::manual_seed(opt.seed);
  Reranker model(rc, vocab);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model->named_parameters(true)) params.emplace_back(item.key(), item.value());
  AdamW optimizer(params, {0.9, 0.98, 1e-6, rc.weight_decay}, decays);
  Ema ema(*model);
  int64_t start = 0;
  if (opt.resume) start = checkpoint_load(ckpt_path, *model, optimizer, ema)["step"].get<int64_t>();
  config_save(path_join(opt.out, kConfigFile), config);
  Reranker shipped(rc, vocab);
  shipped->eval();
  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  if (!opt.quiet)
    std::fprintf(stderr, "rerank: %lld params, %lld train / %lld held-out pairs (%lld skipped), tokenizer %d ids\n"
                 "config: %s\n", static_cast<long long>(n_params), static_cast<long long>(n_train),
                 static_cast<long long>(n_val), static_cast<long long>(data.skipped), vocab,
                 config_to_json(config)["rerank"].dump().c_str());

  // Held-out pairs: each image with its first caption, scored with the EMA weights that ship.
  auto evaluate = [&]() {
    torch::InferenceMode inference;
    ema.copy_to(*shipped);
    std::vector<torch::Tensor> text, image;
    for (int64_t i = n_train; i < n_all; i += 256) {
      const int64_t b = std::min<int64_t>(256, n_all - i);
      std::vector<int64_t> rows;
      for (int64_t r = i; r < i + b; ++r) rows.push_back(first_caption[static_cast<size_t>(r)]);
      text.push_back(shipped->embed_text(caption_ids.index_select(0, torch::tensor(rows))));
      image.push_back(shipped->embed_images(to_float_images(data.images.narrow(0, i, b))));
    }
    const RetrievalHits hits = retrieval_hits(torch::cat(text), torch::cat(image), kRetrievalPool);
    RetrievalAccuracy acc;
    acc.pairs = static_cast<int>(hits.pairs);
    acc.pool = static_cast<int>(std::min<int64_t>(kRetrievalPool, n_val));
    acc.top1 = hits.pairs ? double(hits.top1) / hits.pairs : 0;
    acc.top5 = hits.pairs ? double(hits.top5) / hits.pairs : 0;
    return acc;
  };
  auto save_all = [&](int64_t step) {
    checkpoint_save(ckpt_path, *model, optimizer, ema, {{"step", step}, {"seed", opt.seed}});
    ema.copy_to(*shipped);
    reranker_save(path_join(opt.out, kRerankWeightsFile), shipped, step, tokenizer.fingerprint());
  };

  RerankTrainResult result;
  MetricsLog metrics(path_join(opt.out, "metrics.jsonl"), opt.resume ? start : -1);
  ProgressBar bar("rerank", rc.steps - start, "step");
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int64_t step = start; step < rc.steps; ++step) {
    std::mt19937_64 rng(static_cast<uint64_t>(step) * 0x9e3779b97f4a7c15ull ^ opt.seed);
    const std::vector<int64_t> rows = batch_indices(n_train, rc.batch, step, opt.seed);
    std::vector<int64_t> picked;
    for (int64_t r : rows) {
      const int64_t lo = first_caption[static_cast<size_t>(r)], hi = first_caption[static_cast<size_t>(r) + 1];
      picked.push_back(lo + std::uniform_int_distribution<int64_t>(0, hi - lo - 1)(rng));
    }
    const double lr = lr_at(rc, step, rc.steps);
    optimizer.zero_grad();
    const torch::Tensor text = model->embed_text(caption_ids.index_select(0, torch::tensor(picked)));
    const torch::Tensor image = model->embed_images(to_float_images(data.images.index_select(0, torch::tensor(rows))));
    const torch::Tensor loss = contrastive_loss(text, image, model->log_scale);
    loss.backward();
    optimizer.step(lr);
    {
      torch::NoGradGuard no_grad;
      model->log_scale.clamp_(0, std::log(100.0));  // CLIP's cap on the inverse temperature
    }
    ema.update(*model, rc.ema_decay);

    const double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value))
      throw Error("rerank: loss became non-finite at step " + std::to_string(step) + " (try a lower lr)");
    if (step == start) result.first_loss = loss_value;
    result.last_loss = loss_value;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double pairs_per_s = (step - start + 1) * rc.batch / std::max(elapsed, 1e-9);
    nlohmann::json record = {{"step", step + 1}, {"loss", loss_value}, {"lr", lr},
                             {"temperature", 1 / std::exp(model->log_scale.item<double>())},
                             {"pairs_per_s", pairs_per_s}};
    const bool last = step + 1 == rc.steps;
    if (n_val > 0 && ((step + 1) % opt.val_every == 0 || last)) {
      result.val = evaluate();
      record["val_top1"] = result.val.top1;
      record["val_top5"] = result.val.top5;
      record["val_pool"] = result.val.pool;
    }
    metrics.write(record);
    if (!opt.quiet) {
      char extra[160];
      std::snprintf(extra, sizeof(extra), "loss %.4f lr %.2e T %.3f %.0f pairs/s%s", loss_value, lr,
                    record["temperature"].get<double>(), pairs_per_s,
                    record.contains("val_top1")
                        ? (" top1 " + std::to_string(static_cast<int>(100 * result.val.top1)) + "%").c_str()
                        : "");
      bar.update(step - start + 1, extra);
    }
    if ((step + 1) % opt.save_every == 0 || last) save_all(step + 1);
  }
  if (!opt.quiet) bar.finish();
  if (start >= rc.steps) {
    save_all(rc.steps);
    if (n_val > 0) result.val = evaluate();
  }
  result.steps = rc.steps;
  if (!opt.quiet) {
    if (n_val > 0)
      std::fprintf(stderr,
                   "rerank: held-out caption->image retrieval over %d captions, pools of %d candidates: "
                   "top-1 %.1f%%, top-5 %.1f%% (chance %.1f%% / %.1f%%)\n",
                   result.val.pairs, result.val.pool, 100 * result.val.top1, 100 * result.val.top5,
                   100.0 / result.val.pool, 100.0 * std::min(5, result.val.pool) / result.val.pool);
    std::fprintf(stderr, "rerank: wrote %s\n", path_join(opt.out, kRerankWeightsFile).c_str());
  }
  return result;
}

}  // namespace dalle

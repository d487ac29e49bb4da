#include "dalle/rerank/rerank_trainer.h"

#include "dalle/util/torch_api.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "dalle/bundle/bundle.h"
#include "dalle/data/loader.h"
#include "dalle/rerank/contrastive_loss.h"
#include "dalle/rerank/reranker.h"
#include "dalle/rerank/retrieval.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/dist/data_parallel.h"
#include "dalle/train/ema.h"
#include "dalle/train/metrics_log.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle {

namespace {

constexpr int kRetrievalPool = 100;
// Captions read to learn a tokenizer when none is given: plenty for a BPE vocabulary, bounded for
// web-scale sources.
constexpr int64_t kTokenizerSampleSize = 200000;

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
  detect_source_format(opt.data);  // a missing or unknown source fails before anything is written
  const std::string ckpt_path = path_join(opt.out, kCheckpointFile);
  if (!opt.resume && path_exists(ckpt_path))
    throw file_error(opt.out, "already holds a training run; pass --resume to continue it or pick a new -o");
  ModelConfig config = opt.resume ? config_load(path_join(opt.out, kConfigFile)) : preset;
  RerankConfig& rc = config.rerank;
  if (opt.steps >= 0) rc.steps = opt.steps;
  const int world = opt.dist ? opt.dist->world() : 1;
  const bool main_rank = !opt.dist || opt.dist->is_main();  // writes the run folder
  const bool quiet = opt.quiet || !main_rank;
  LoaderPosition position;
  int64_t start = 0;
  if (opt.resume) {
    const nlohmann::json state = checkpoint_read_state(ckpt_path);
    start = state.at("step").get<int64_t>();
    position = resume_position(state, opt.dist.get(), "rerank train");
  }

  // Pairs stream (data/loader.h) with SPEC §3's augmentation (near-centre crop, random resize,
  // no flip) unless rerank.augment is off; one caption per image per epoch, drawn at random.
  LoaderOptions lo;
  lo.data = opt.data;
  lo.image_size = rc.image_size;
  lo.augment = rc.augment ? AugmentKind::prior : AugmentKind::centre;
  lo.batch_size = rc.batch;
  lo.workers = opt.workers;
  lo.shuffle_buffer = opt.shuffle_buffer;
  lo.seed = opt.seed;
  lo.holdout = rc.val_fraction;
  lo.max_samples = opt.max_images;
  lo.require_caption = true;
  lo.rank = opt.dist ? opt.dist->rank() : 0;
  lo.world = world;
  const HeldOutSet held_out = loader_read_holdout(lo, rc.val_pairs);
  const int64_t n_val = held_out.images.size(0);
  Loader loader(lo, position);
  LoaderBatch batch = loader.next();  // fails here, before the run folder exists, on unusable data

  if (main_rank) make_dirs(opt.out);
  const std::string tokenizer_file = path_join(opt.out, config.tokenizer_file);
  const Tokenizer tokenizer = tokenizer_from_main(opt.dist.get(), tokenizer_file, [&] {
    return tokenizer_for_run(tokenizer_file, opt.resume, opt.tokenizer,
                             opt.tokenizer.empty() && !opt.resume ? loader_read_captions(opt.data, kTokenizerSampleSize)
                                                                  : std::vector<std::vector<std::string>>{},
                             config.prior.text_vocab);
  });
  const int vocab = tokenizer.vocab_size();
  const c10::Device device = device_for_local_rank(opt.device, opt.dist ? opt.dist->launch().local_rank : 0);
  if (opt.tf32) allow_tf32();
  torch::manual_seed(opt.seed);
  Reranker model(rc, vocab);
  model->to(device);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model->named_parameters(true)) params.emplace_back(item.key(), item.value());
  std::unique_ptr<DataParallel> dp;
  if (opt.dist) dp = std::make_unique<DataParallel>(opt.dist, params, DataParallelOptions{});
  AdamW optimizer(params, {0.9, 0.98, 1e-6, rc.weight_decay}, decays);
  Ema ema(*model);
  if (opt.resume) checkpoint_load(ckpt_path, *model, optimizer, ema);
  if (main_rank) config_save(path_join(opt.out, kConfigFile), config);
  Reranker shipped(rc, vocab);
  shipped->to(device);
  shipped->eval();
  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  if (!quiet)
    std::fprintf(stderr, "rerank: %lld params, streaming %s (%s), %lld held-out pairs, tokenizer %d ids\nconfig: %s\n",
                 static_cast<long long>(n_params), opt.data.c_str(), rc.augment ? "augmented" : "centre crops",
                 static_cast<long long>(n_val), vocab, config_to_json(config)["rerank"].dump().c_str());

  // Held-out pairs: each image with one of its captions, scored with the EMA weights that ship.
  const torch::Tensor val_ids = n_val > 0 ? rerank_encode_captions(tokenizer, held_out.captions, rc, vocab) : torch::Tensor();
  auto evaluate = [&]() {
    torch::InferenceMode inference;
    ema.copy_to(*shipped);
    std::vector<torch::Tensor> text, image;
    for (int64_t i = 0; i < n_val; i += 256) {
      const int64_t b = std::min<int64_t>(256, n_val - i);
      text.push_back(shipped->embed_text(val_ids.narrow(0, i, b)));
      image.push_back(shipped->embed_images(to_float_images(held_out.images.narrow(0, i, b))));
    }
    const RetrievalHits hits = retrieval_hits(torch::cat(text), torch::cat(image), kRetrievalPool);
    RetrievalAccuracy acc;
    acc.pairs = static_cast<int>(hits.pairs);
    acc.pool = static_cast<int>(std::min<int64_t>(kRetrievalPool, n_val));
    acc.top1 = hits.pairs ? double(hits.top1) / hits.pairs : 0;
    acc.top5 = hits.pairs ? double(hits.top5) / hits.pairs : 0;
    return acc;
  };
  // Every rank calls it (the data positions are gathered); rank 0 writes.
  auto save_all = [&](int64_t step) {
    const nlohmann::json positions =
        dp ? nlohmann::json(dp->all_gather({position.epoch, position.sample}))
           : nlohmann::json::array({{position.epoch, position.sample}});
    if (!main_rank) return;
    checkpoint_save(ckpt_path, *model, optimizer, ema,
                    {{"step", step}, {"seed", opt.seed}, {"data_epoch", position.epoch}, {"data_sample", position.sample},
                     {"data_positions", positions}, {"world_size", world}});
    ema.copy_to(*shipped);
    reranker_save(path_join(opt.out, kRerankWeightsFile), shipped, step, tokenizer.fingerprint());
  };

  RerankTrainResult result;
  std::optional<MetricsLog> metrics;
  if (main_rank) metrics.emplace(path_join(opt.out, "metrics.jsonl"), opt.resume ? start : -1);
  ProgressBar bar("rerank", rc.steps - start, "step");
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int64_t step = start; step < rc.steps; ++step) {
    if (step > start) batch = loader.next();  // the first batch was read before the loop
    position = batch.position;
    const double lr = lr_at(rc, step, rc.steps);
    optimizer.zero_grad();
    if (dp) dp->zero_grad();
    const torch::Tensor text = model->embed_text(rerank_encode_captions(tokenizer, batch.captions, rc, vocab));
    const torch::Tensor image = model->embed_images(to_float_images(batch.images));
    const torch::Tensor loss = contrastive_loss(text, image, model->log_scale);
    if (dp) dp->before_backward(true);
    loss.backward();
    double loss_value = loss.item<double>();
    if (dp) {
      dp->after_backward();
      loss_value = dp->mean({loss_value})[0];  // the same stop decision on every rank
    }
    if (!std::isfinite(loss_value))
      throw Error("rerank: loss became non-finite at step " + std::to_string(step) + " (try a lower lr)");
    optimizer.step(lr);
    {
      torch::NoGradGuard no_grad;
      model->log_scale.clamp_(0, std::log(100.0));  // CLIP's cap on the inverse temperature
    }
    ema.update(*model, rc.ema_decay);

    if (step == start) result.first_loss = loss_value;
    result.last_loss = loss_value;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double pairs_per_s = (step - start + 1) * rc.batch * world / std::max(elapsed, 1e-9);
    nlohmann::json record = {{"step", step + 1}, {"loss", loss_value}, {"lr", lr},
                             {"temperature", 1 / std::exp(model->log_scale.item<double>())},
                             {"pairs_per_s", pairs_per_s}, {"epoch", position.epoch},
                             {"data_wait", loader.wait_seconds() / std::max(elapsed, 1e-9)},
                             {"batch", rc.batch}, {"global_batch", rc.batch * world}, {"world_size", world}};
    if (dp) {
      record["comm_bytes"] = dp->take_comm_bytes();
      record["comm_wait_s"] = dp->take_comm_seconds();
    }
    const bool last = step + 1 == rc.steps;
    if (main_rank && n_val > 0 && ((step + 1) % opt.val_every == 0 || last)) {
      result.val = evaluate();
      record["val_top1"] = result.val.top1;
      record["val_top5"] = result.val.top5;
      record["val_pool"] = result.val.pool;
    }
    if (metrics) metrics->write(record);
    if (!quiet) {
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
  if (!quiet) bar.finish();
  if (start >= rc.steps) {
    save_all(rc.steps);
    if (main_rank && n_val > 0) result.val = evaluate();
  }
  if (dp) dp->check_replicas_agree();
  result.steps = rc.steps;
  if (!quiet) {
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

#include "dalle/train/prior_trainer.h"

#include "dalle/util/torch_api.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>

#include "dalle/bundle/bundle.h"
#include "dalle/dist/data_parallel.h"
#include "dalle/io/weights.h"
#include "dalle/prior/loss.h"
#include "dalle/sample/generate.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/train/ema.h"
#include "dalle/train/matmul_peak.h"
#include "dalle/train/metrics_log.h"
#include "dalle/train/nonfinite_losses.h"
#include "dalle/train/prior_data.h"
#include "dalle/train/precision.h"
#include "dalle/train/resblock_runner.h"
#include "dalle/train/schedules.h"
#include "dalle/util/block_weights.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle {

namespace {

// Weight decay applies to matrices only: not to gains, biases or embeddings (SPEC §3).
bool decays(const std::string& name) {
  if (name.find("emb") != std::string::npos || name == "text_pos") return false;
  if (name.find(".ln.") != std::string::npos || name.rfind("ln_f", 0) == 0) return false;
  return name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
}

struct Batch {
  torch::Tensor text, image;
};

// Picks one caption per sample and encodes it, with BPE dropout when training (SPEC §2).
// `caption_drop`: probability of replacing a caption by all pads, so the same model also learns
// the unconditional distribution that classifier-free guidance needs. Captions longer than
// text_len tokens are cut; `truncated` counts them.
Batch make_batch(const TokenBatch& data, const Tokenizer& tokenizer, const PriorConfig& pc, std::mt19937_64& rng,
                 double bpe_dropout, double caption_drop, int64_t* truncated, const c10::Device& device) {
  std::vector<int64_t> text;
  for (const auto& options : data.captions) {
    std::vector<int> ids;
    if (!options.empty()) {
      const auto& picked = options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
      ids = tokenizer.encode(picked, bpe_dropout, rng);
    }
    const bool drop = caption_drop > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < caption_drop;
    if (drop) ids.clear();
    if (truncated && static_cast<int64_t>(ids.size()) > pc.text_len) ++*truncated;
    const auto padded = pad_text(ids, pc.text_len, pc.text_vocab);
    text.insert(text.end(), padded.begin(), padded.end());
  }
  Batch b;
  b.text = torch::tensor(text, torch::kLong).view({static_cast<int64_t>(data.captions.size()), pc.text_len}).to(device);
  b.image = data.tokens.flatten(1).to(device);
  return b;
}

// Captions read to learn a tokenizer when none is given: plenty for a BPE vocabulary, bounded
// for web-scale folders.
constexpr int64_t kTokenizerSampleSize = 200000;

}  // namespace

PriorTrainResult prior_train(const ModelConfig& preset, const PriorTrainOptions& opt) {
  const std::string ckpt_path = path_join(opt.out, kCheckpointFile);
  if (!opt.resume && path_exists(ckpt_path))
    throw file_error(opt.out, "already holds a training run; pass --resume to continue it or pick a new -o");

  // The samples' dVAE (the token folder's, or --vae's when encoding on the fly) decides the grid
  // and vocabulary.
  PriorDataOptions data_options;
  data_options.data = opt.data;
  data_options.vae = opt.encode_on_the_fly ? opt.vae : "";
  prior_data_check(data_options);  // unreadable data: an error before anything is written
  ModelConfig vae_config;
  Dvae vae = prior_data_vae(data_options, &vae_config);
  ModelConfig config = opt.resume ? config_load(path_join(opt.out, kConfigFile)) : preset;
  if (!opt.resume) {
    config.vae = vae_config.vae;
    config.vae_train = vae_config.vae_train;
  }
  PriorTrainConfig& tc = config.prior_train;
  const Precision precision = precision_from_name(opt.precision);
  const bool scaled = precision != Precision::fp32;
  const c10::Device device = device_for_local_rank(opt.device, opt.dist ? opt.dist->launch().local_rank : 0);
  const PrecisionPlan plan = precision_plan(precision, device);
  if (opt.tf32) allow_tf32();
  if (opt.weights16) check_weights16("train", plan, opt.dist != nullptr);
  if (opt.steps >= 0) tc.steps = opt.steps;
  if (opt.batch > 0) tc.batch = opt.batch;
  if (opt.powersgd_rank >= 0) tc.powersgd_rank = opt.powersgd_rank;
  const PriorConfig& pc = config.prior;
  const int world = opt.dist ? opt.dist->world() : 1;
  const bool main_rank = !opt.dist || opt.dist->is_main();  // writes the run folder
  const bool quiet = opt.quiet || !main_rank;
  if (!opt.dist && (opt.powersgd_rank > 0 || opt.shard_optimizer) && !quiet)
    std::fprintf(stderr, "train: --powersgd-rank and --shard-optimizer act in data-parallel runs only (WORLD_SIZE > 1); "
                         "this is one process\n");

  // The samples stream (train/prior_data.h): memory holds a shard (or a few batches of images)
  // and the shuffle buffer, and a hash of each sample's name holds out val_fraction of them.
  data_options.batch_size = tc.batch;
  data_options.shuffle_buffer = opt.shuffle_buffer;
  data_options.seed = opt.seed;
  data_options.holdout = tc.val_fraction;
  data_options.augment = tc.augment;
  data_options.workers = opt.workers;
  data_options.rank = opt.dist ? opt.dist->rank() : 0;
  data_options.world = world;
  const TokenBatch held_out = prior_data_holdout(data_options, vae, opt.val_samples);
  const int64_t n_val = held_out.tokens.defined() ? held_out.tokens.size(0) : 0;

  if (main_rank) make_dirs(opt.out);
  const std::string tokenizer_file = path_join(opt.out, config.tokenizer_file);
  const Tokenizer tokenizer = tokenizer_from_main(opt.dist.get(), tokenizer_file, [&] {
    return tokenizer_for_run(tokenizer_file, opt.resume, opt.tokenizer,
                             opt.tokenizer.empty() && !opt.resume ? prior_data_captions(data_options, kTokenizerSampleSize)
                                                                  : std::vector<std::vector<std::string>>{},
                             pc.text_vocab);
  });

  torch::manual_seed(opt.seed);
  Prior prior = prior_create(config);
  prior->to(device);
  if (opt.weights16) store_block_weights(prior->resblock_parameters(), plan.dtype);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : prior->named_parameters(true)) params.emplace_back(item.key(), item.value());
  // Replicas start from rank 0's weights; gradients are averaged in buckets during backward.
  std::unique_ptr<DataParallel> dp;
  if (opt.dist)
    dp = std::make_unique<DataParallel>(opt.dist, params,
                                        DataParallelOptions{tc.powersgd_rank, opt.seed, opt.shard_optimizer});
  auto owned = [&](const std::string& name) { return !dp || dp->owns(name); };
  std::vector<std::pair<std::string, torch::Tensor>> owned_params;
  for (auto& [name, p] : params)
    if (owned(name)) owned_params.emplace_back(name, p);
  AdamW optimizer(owned_params, {tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay}, decays);
  Ema ema(*prior, owned);
  const std::vector<std::vector<torch::Tensor>> blocks = prior->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()), world);  // M·2^13 with M replicas (SPEC §3)
  prior->set_resblock_runner(resblock_runner_for_training(precision, scales, opt.checkpoint_activations, plan.emulate_fp16));
  PlateauHalver plateau(tc.plateau_window, tc.max_halvings);
  NonfiniteLosses nonfinite(tc.nonfinite_loss_limit);
  LoaderPosition position;
  int64_t truncated = 0;  // training captions cut to text_len tokens so far
  int64_t start = 0;
  if (opt.resume) {
    SafeTensors file;
    nlohmann::json state = checkpoint_load(ckpt_path, *prior, optimizer, ema, &file);
    if (dp) dp->load_powersgd_state(file, ckpt_path);
    start = state["step"].get<int64_t>();
    plateau.best_ = state.value("plateau_best", 0.0);
    plateau.sum_ = state.value("plateau_sum", 0.0);
    plateau.count_ = state.value("plateau_count", int64_t(0));
    plateau.halvings_ = state.value("plateau_halvings", 0);
    if (state.contains("grad_scales")) scales.load_state(state["grad_scales"]);
    nonfinite.set_in_a_row(state.value("nonfinite_in_a_row", 0));
    position = resume_position(state, opt.dist.get(), "train");
    truncated = state.value("captions_truncated", int64_t(0));
  }
  const std::unique_ptr<PriorData> data_stream = prior_data_open(data_options, vae, position);
  if (main_rank) {
    config_save(path_join(opt.out, kConfigFile), config);
    std::filesystem::copy_file(path_join(opt.encode_on_the_fly ? opt.vae : opt.data, kVaeWeightsFile),
                               path_join(opt.out, kVaeWeightsFile),
                               std::filesystem::copy_options::overwrite_existing);
  }
  const int64_t n_params = prior_param_count(pc, config.vae.grid(), config.vae.grid(), config.vae.vocab);
  if (!quiet) {
    std::fprintf(stderr, "prior: %lld params on %s (%s%s), streaming %s, %lld held-out samples, tokenizer %d ids\nconfig: %s\n",
                 static_cast<long long>(n_params), device.str().c_str(), precision_name(precision),
                 opt.weights16 ? ", 16-bit weights" : "", opt.data.c_str(), static_cast<long long>(n_val),
                 tokenizer.vocab_size(), config_to_json(config).dump().c_str());
    if (dp)
      std::fprintf(stderr, "data parallel: %d ranks (%s), batch %d per rank, global batch %lld%s%s\n", world,
                   opt.dist->launch().launcher.c_str(), tc.batch,
                   static_cast<long long>(tc.batch) * world * opt.accumulate,
                   dp->powersgd() ? (", PowerSGD rank " + std::to_string(tc.powersgd_rank)).c_str() : "",
                   opt.shard_optimizer ? ", optimizer state sharded" : "");
  }

  // MFU against the peak of the precision the products run in (bf16 runs ~2x the fp32 peak here).
  const double peak = matmul_peak_flops(plan.autocast ? plan.dtype : torch::kFloat32, 1024, device);
  std::optional<MetricsLog> metrics;
  if (main_rank) {
    metrics.emplace(path_join(opt.out, "metrics.jsonl"), opt.resume ? start : -1);
    make_dirs(path_join(opt.out, "samples"));
  }
  Bundle bundle;
  bundle.path = opt.out;
  bundle.config = config;
  bundle.tokenizer = tokenizer;
  // Sample grids are drawn where the model trains: the bundle holds its own dVAE on the device
  // (the data stream's encodes on the CPU).
  bundle.vae = device.is_cpu() ? vae : vae_load(opt.encode_on_the_fly ? opt.vae : opt.data);
  bundle.prior = prior_create(config);
  bundle_to_device(bundle, device);

  // The EMA weights into the bundle's prior on rank 0; with a sharded optimizer every rank takes
  // part, sending its share (unless `gathered` already holds the other ranks' "ema." shares).
  auto ema_to_bundle = [&](const SafeTensors* already_gathered = nullptr) {
    SafeTensors gathered;
    if (dp && !already_gathered) {
      SafeTensors own;
      ema.state_into(own, "ema.");
      gathered = dp->gather_to_main(own, {"ema."});
    }
    if (!main_rank) return;
    if (already_gathered) gathered = *already_gathered;
    ema.copy_to(*bundle.prior);
    torch::NoGradGuard no_grad;
    for (auto& item : bundle.prior->named_parameters(true))
      if (auto it = gathered.tensors.find("ema." + item.key()); it != gathered.tensors.end())
        item.value().copy_(it->second);
    bundle.decoder.reset();  // packed from the previous weights; sampling repacks the new ones
  };

  // Every rank calls it (PowerSGD buffers, shards and data positions are gathered); rank 0 writes.
  auto save_all = [&](int64_t step) {
    SafeTensors extra;
    nlohmann::json positions = nlohmann::json::array({{position.epoch, position.sample}});
    if (dp) {
      SafeTensors own;
      optimizer.state_into(own);
      ema.state_into(own, "ema.");
      extra = dp->gather_to_main(own, {"adam.m.", "adam.v.", "ema."});
      SafeTensors errors = dp->powersgd_state();
      extra.tensors.insert(errors.tensors.begin(), errors.tensors.end());
      extra.metadata.insert(errors.metadata.begin(), errors.metadata.end());
      positions = dp->all_gather({position.epoch, position.sample});
    }
    ema_to_bundle(dp ? &extra : nullptr);
    if (!main_rank) return;
    checkpoint_save(ckpt_path, *prior, optimizer, ema,
                    {{"step", step}, {"seed", opt.seed}, {"plateau_best", plateau.best_},
                     {"plateau_sum", plateau.sum_}, {"plateau_count", plateau.count_},
                     {"plateau_halvings", plateau.halvings_}, {"grad_scales", scales.state()},
                     {"nonfinite_in_a_row", nonfinite.in_a_row()}, {"data_epoch", position.epoch},
                     {"data_sample", position.sample}, {"data_positions", positions},
                     {"world_size", world}, {"captions_truncated", truncated}},
                    extra);
    SafeTensors weights;
    module_weights_into(*bundle.prior, weights);
    weights.metadata["step"] = std::to_string(step);
    safetensors_save(path_join(opt.out, kPriorWeightsFile), weights);
  };

  auto evaluate = [&]() -> std::pair<double, double> {
    torch::NoGradGuard no_grad;
    prior->eval();
    double text = 0, image = 0;
    int64_t batches = 0;
    std::mt19937_64 rng(12345);
    AutocastGuard autocast(opt.weights16, device.type(), plan.dtype);  // 16-bit weights take 16-bit inputs
    for (int64_t i = 0; i < n_val; i += tc.batch) {
      TokenBatch part;
      const int64_t count = std::min<int64_t>(tc.batch, n_val - i);
      part.tokens = held_out.tokens.narrow(0, i, count);
      part.captions.assign(held_out.captions.begin() + i, held_out.captions.begin() + i + count);
      Batch b = make_batch(part, tokenizer, pc, rng, 0.0, 0.0, nullptr, device);
      PriorLogits logits = prior->forward(b.text, b.image);
      PriorLoss l = prior_loss(logits, b.text, b.image, tc.text_loss_weight);
      text += l.text.item<double>();
      image += l.image.item<double>();
      ++batches;
    }
    prior->train();
    return {text / std::max<int64_t>(batches, 1), image / std::max<int64_t>(batches, 1)};
  };

  auto write_samples = [&](int64_t step) {
    ema_to_bundle();
    if (!main_rank) return;
    bundle.prior->eval();
    std::vector<Image> tiles;
    for (const auto& prompt : opt.sample_prompts) {
      GenerateRequest request;
      request.prompt = prompt;
      request.count = 4;
      request.batch = 4;
      request.seed = 1;
      for (auto& g : generate_images(bundle, request)) tiles.push_back(std::move(g.image));
    }
    char name[64];
    std::snprintf(name, sizeof(name), "step-%07lld.png", static_cast<long long>(step));
    PngText text;
    for (size_t i = 0; i < opt.sample_prompts.size(); ++i)
      text.emplace_back("row " + std::to_string(i + 1), opt.sample_prompts[i]);
    image_save_png(path_join(path_join(opt.out, "samples"), name), image_grid(tiles, 4), text);
  };

  PriorTrainResult result;
  ProgressBar bar("train", tc.steps - start, "step");
  const int64_t global_batch = static_cast<int64_t>(tc.batch) * world * opt.accumulate;
  const int64_t seq_tokens = pc.text_len + prior->image_tokens();
  const auto t0 = std::chrono::steady_clock::now();
  prior->train();
  for (int64_t step = start; step < tc.steps; ++step) {
    const double lr = tc.lr * warmup_factor(step, tc.warmup_steps) * plateau.factor();
    std::mt19937_64 rng(static_cast<uint64_t>(step) * 0x9e3779b97f4a7c15ull ^ opt.seed);
    optimizer.zero_grad();
    if (dp) dp->zero_grad();
    double loss_sum = 0, text_sum = 0, image_sum = 0;
    for (int micro = 0; micro < opt.accumulate; ++micro) {
      if (dp) dp->before_backward(micro + 1 == opt.accumulate);
      const TokenBatch data = data_stream->next();
      position = data.position;
      if (data.tokens.size(1) != config.vae.grid() || data.tokens.size(2) != config.vae.grid())
        throw file_error(opt.data, "token grid does not match the VAE config");
      Batch b = make_batch(data, tokenizer, pc, rng, tc.bpe_dropout, tc.caption_drop, &truncated, device);
      PriorLogits logits;
      {
        AutocastGuard autocast(plan.autocast, device.type(), plan.dtype);
        logits = prior->forward(b.text, b.image);  // logits come back in fp32
      }
      PriorLoss l = prior_loss(logits, b.text, b.image, tc.text_loss_weight);
      if (opt.nonfinite_loss_at && opt.nonfinite_loss_at(step)) l.loss = l.loss * NAN;
      (l.loss / opt.accumulate).backward();
      loss_sum += l.loss.item<double>() / opt.accumulate;
      text_sum += l.text.item<double>() / opt.accumulate;
      image_sum += l.image.item<double>() / opt.accumulate;
    }
    if (dp) {
      dp->after_backward();
      // The losses of all ranks: a non-finite one anywhere skips the update everywhere.
      const std::vector<double> mean = dp->mean({loss_sum, text_sum, image_sum});
      loss_sum = mean[0], text_sum = mean[1], image_sum = mean[2];
    }
    // A non-finite loss skips the update (SPEC §3) without touching the gradient scales; a
    // skipped update leaves weights, AdamW moments and step count, and the EMA untouched.
    const bool loss_finite = nonfinite.observe(loss_sum);
    const std::optional<double> norm =
        loss_finite ? scaled_update(scaled ? &scales : nullptr, blocks, precision == Precision::fp16,
                                    prior->parameters(), tc.grad_clip, optimizer, lr, step,
                                    dp ? [&](std::vector<bool>& overflowed) { dp->sync_after_unscale(overflowed); }
                                       : std::function<void(std::vector<bool>&)>())
                    : std::nullopt;
    const bool skipped = !norm;
    if (dp && !skipped) dp->gather_updated_parameters();
    const double grad_norm = norm.value_or(0.0);
    // The paper averages every 25 updates; each average applies the decay once.
    if (!skipped && (step + 1) % tc.ema_every == 0) ema.update(*prior, tc.ema_decay);
    result.skipped_steps += skipped;
    if (loss_finite) plateau.observe(loss_sum);

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tok_per_s = (step - start + 1) * global_batch * seq_tokens / std::max(elapsed, 1e-9);
    const double mfu = 6.0 * n_params * tok_per_s / (peak * world);  // each rank has its own peak
    if (step == start) result.first_loss = loss_sum;
    result.tokens_per_second = tok_per_s;
    result.last_loss = loss_sum;
    nlohmann::json record = {{"step", step + 1},   {"loss", loss_sum},       {"loss_text", text_sum},
                             {"loss_img", image_sum}, {"lr", lr},           {"grad_norm", grad_norm},
                             {"tok_per_s", tok_per_s}, {"mfu", mfu}, {"epoch", position.epoch},
                             {"captions_truncated", truncated}, {"batch", tc.batch},
                             {"global_batch", global_batch}, {"world_size", world}};
    if (dp) {
      result.comm_bytes = dp->take_comm_bytes();
      record["comm_bytes"] = result.comm_bytes;
      record["comm_wait_s"] = dp->take_comm_seconds();
      if (dp->powersgd()) record["powersgd_compression"] = result.powersgd_compression = dp->powersgd_compression();
    }
    if (opt.encode_on_the_fly) record["data_wait"] = data_stream->wait_seconds() / std::max(elapsed, 1e-9);
    if (scaled || skipped) {
      record["skipped"] = skipped;
      if (skipped) record["grad_norm"] = nullptr;
    }
    if (scaled) record["grad_scales"] = scales.scales();
    if (!loss_finite) record["nonfinite_loss"] = true;
    const bool last = step + 1 == tc.steps;
    if (main_rank && n_val > 0 && ((step + 1) % opt.val_every == 0 || last)) {
      const auto [val_text, val_image] = evaluate();
      record["val_loss_text"] = val_text;
      record["val_loss_img"] = val_image;
      result.val_loss_image = val_image;
    }
    if (metrics) metrics->write(record);
    if (!quiet) {
      char extra[220];
      std::snprintf(extra, sizeof(extra), "loss %.4f text %.3f img %.3f lr %.2e gnorm %.2f %.0f tok/s mfu %.1f%%%s",
                    loss_sum, text_sum, image_sum, lr, grad_norm, tok_per_s, 100 * mfu,
                    !loss_finite ? " (skipped: non-finite loss)" : skipped ? " (skipped: non-finite gradient)" : "");
      bar.update(step - start + 1, extra);
    }
    if (nonfinite.limit_reached()) {
      save_all(step + 1);
      throw Error(nonfinite.stop_message("train", step + 1, opt.out, "prior_train"));
    }
    if ((step + 1) % opt.save_every == 0 || last) save_all(step + 1);
    if (!opt.sample_prompts.empty() && ((step + 1) % opt.sample_every == 0 || last)) write_samples(step + 1);
  }
  if (!quiet) bar.finish();
  if (start >= tc.steps) save_all(tc.steps);
  if (dp) dp->check_replicas_agree();
  result.steps = tc.steps;
  if (!quiet) std::fprintf(stderr, "train: bundle written to %s\n", opt.out.c_str());
  return result;
}

}  // namespace dalle

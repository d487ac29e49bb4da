#include "dalle/train/vae_trainer.h"

#include "dalle/util/torch_api.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <limits>

#include "dalle/bundle/bundle.h"
#include "dalle/dist/data_parallel.h"
#include "dalle/data/loader.h"
#include "dalle/io/image.h"
#include "dalle/io/weights.h"
#include "dalle/train/adamw.h"
#include "dalle/train/checkpoint.h"
#include "dalle/train/ema.h"
#include "dalle/train/grad_scaling.h"
#include "dalle/train/metrics_log.h"
#include "dalle/train/nonfinite_losses.h"
#include "dalle/train/precision.h"
#include "dalle/train/resblock_runner.h"
#include "dalle/train/schedules.h"
#include "dalle/util/block_weights.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"
#include "dalle/vae/evaluate.h"
#include "dalle/vae/loss.h"
#include "dalle/vae/pixels.h"

namespace dalle {

namespace {

torch::Tensor to_unit_float(const torch::Tensor& images_u8) {
  return images_u8.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
}

void save_reconstruction_grid(Dvae& vae, const torch::Tensor& images_u8, const std::string& path) {
  image_save_png(path, reconstruction_grid(vae, images_u8),
                 {{"description", "top: originals, bottom: dVAE reconstructions"}});
}

}  // namespace

VaeTrainResult vae_train(ModelConfig config, const VaeTrainOptions& opt) {
  detect_source_format(opt.data);  // a missing or unknown source fails before anything is written
  const std::string ckpt_path = path_join(opt.out, kCheckpointFile);
  if (opt.resume) {
    config = config_load(path_join(opt.out, kConfigFile));
  } else if (path_exists(ckpt_path)) {
    throw file_error(opt.out, "already holds a training run; pass --resume to continue it or pick a new -o");
  }
  VaeTrainConfig& tc = config.vae_train;
  if (opt.steps >= 0) tc.steps = opt.steps;
  // A resumed run's saved config already holds its scaled schedule lengths.
  if (opt.schedule_scale != 1.0 && !opt.resume) {
    for (int64_t* length : {&tc.kl_steps, &tc.tau_steps, &tc.lr_steps, &tc.decoder_finetune_steps})
      *length = static_cast<int64_t>(std::llround(*length * opt.schedule_scale));
  }
  if (opt.decoder_finetune_steps >= 0) tc.decoder_finetune_steps = opt.decoder_finetune_steps;
  if (!opt.decoder_finetune_loss.empty()) tc.decoder_finetune_loss = opt.decoder_finetune_loss;
  if (tc.decoder_finetune_loss != "nll" && tc.decoder_finetune_loss != "mse")
    throw Error("vae train: the decoder fine-tuning loss must be nll or mse, not '" + tc.decoder_finetune_loss + "'");
  if (tc.decoder_finetune_steps >= tc.steps)
    throw Error("vae train: the decoder fine-tuning phase (" + std::to_string(tc.decoder_finetune_steps) +
                " updates) must be shorter than the run (" + std::to_string(tc.steps) + " updates)");
  const VaeConfig& vc = config.vae;
  const Precision precision = precision_from_name(opt.precision);
  const bool scaled = precision != Precision::fp32;  // per-resblock gradient scales
  const c10::Device device = device_for_local_rank(opt.device, opt.dist ? opt.dist->launch().local_rank : 0);
  const PrecisionPlan plan = precision_plan(precision, device);
  if (opt.tf32) allow_tf32();
  if (opt.weights16) check_weights16("vae train", plan, opt.dist != nullptr);

  const int world = opt.dist ? opt.dist->world() : 1;
  const bool main_rank = !opt.dist || opt.dist->is_main();  // writes the run folder
  const bool quiet = opt.quiet || !main_rank;
  torch::manual_seed(opt.seed);
  Dvae vae(vc);
  vae->to(device);
  // NHWC convolutions train 1.3x faster in fp32 and 1.4x in bf16 here (bench_vae).
  vae->to_channels_last();
  if (opt.weights16) store_block_weights(vae->resblock_parameters(), plan.dtype);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : vae->named_parameters(true)) params.emplace_back(item.key(), item.value());
  // Replicas start from rank 0's weights; gradients are averaged in buckets during backward.
  std::unique_ptr<DataParallel> dp;
  if (opt.dist) dp = std::make_unique<DataParallel>(opt.dist, params, DataParallelOptions{});
  AdamW optimizer(params, {0.9, 0.999, 1e-8, tc.weight_decay},
                  [](const std::string& name) { return name.size() > 2 && name.compare(name.size() - 2, 2, ".w") == 0; });
  Ema ema(*vae);
  const std::vector<std::vector<torch::Tensor>> blocks = vae->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()), world);  // M·2^13 with M replicas (SPEC §3)
  NonfiniteLosses nonfinite(tc.nonfinite_loss_limit);
  vae->set_resblock_runner(resblock_runner_for_training(precision, scales, opt.checkpoint_activations, plan.emulate_fp16));
  int64_t start = 0;
  LoaderPosition position;
  if (opt.resume) {
    nlohmann::json state = checkpoint_load(ckpt_path, *vae, optimizer, ema);
    start = state["step"].get<int64_t>();
    if (state.contains("grad_scales")) scales.load_state(state["grad_scales"]);
    nonfinite.set_in_a_row(state.value("nonfinite_in_a_row", 0));
    position = resume_position(state, opt.dist.get(), "vae train");
  }

  // The images stream (data/loader.h): memory does not grow with the dataset, and every epoch
  // sees new crops (SPEC §1's augmentation unless vae_train.augment is off).
  LoaderOptions lo;
  lo.data = opt.data;
  lo.image_size = vc.image_size;
  lo.augment = tc.augment ? AugmentKind::dvae : AugmentKind::centre;
  lo.batch_size = tc.batch;
  lo.workers = opt.workers;
  lo.shuffle_buffer = opt.shuffle_buffer;
  lo.seed = opt.seed;
  lo.holdout = tc.val_fraction;
  lo.max_samples = opt.max_images;
  lo.rank = opt.dist ? opt.dist->rank() : 0;
  lo.world = world;
  const HeldOutSet held_out = loader_read_holdout(lo, opt.val_images);
  Loader loader(lo, position);
  LoaderBatch batch = loader.next();  // fails here, before the run folder exists, on data without images
  // Reconstruction grids show held-out images, or the first training images when none are held out.
  const torch::Tensor grid_images = held_out.images.size(0) > 0 ? held_out.images.narrow(0, 0, std::min<int64_t>(8, held_out.images.size(0)))
                                                                : batch.images.narrow(0, 0, std::min<int64_t>(8, tc.batch)).clone();
  if (!quiet)
    std::fprintf(stderr, "vae: streaming %s (%s, %d workers), %lld held-out images, %dx%d -> %dx%d tokens of %d\n",
                 opt.data.c_str(), tc.augment ? "augmented" : "centre crops", opt.workers,
                 static_cast<long long>(held_out.images.size(0)), vc.image_size, vc.image_size, vc.grid(), vc.grid(), vc.vocab);
  std::optional<MetricsLog> metrics;
  if (main_rank) {
    make_dirs(opt.out);
    config_save(path_join(opt.out, kConfigFile), config);
    metrics.emplace(path_join(opt.out, "metrics.jsonl"), opt.resume ? start : -1);
    make_dirs(path_join(opt.out, "recon"));
  }
  if (!quiet) {
    std::fprintf(stderr, "config: %s\n", config_to_json(config).dump().c_str());
    if (dp)
      std::fprintf(stderr, "data parallel: %d ranks (%s), batch %d per rank, global batch %d\n", world,
                   opt.dist->launch().launcher.c_str(), tc.batch, tc.batch * world);
  }
  Dvae ema_vae(vc);
  ema_vae->to(device);
  ema_vae->to_channels_last();

  // Every rank calls it (the data positions are gathered); rank 0 writes.
  auto save_all = [&](int64_t step) {
    const nlohmann::json positions =
        dp ? nlohmann::json(dp->all_gather({position.epoch, position.sample}))
           : nlohmann::json::array({{position.epoch, position.sample}});
    if (!main_rank) return;
    checkpoint_save(ckpt_path, *vae, optimizer, ema,
                    {{"step", step}, {"seed", opt.seed}, {"grad_scales", scales.state()},
                     {"nonfinite_in_a_row", nonfinite.in_a_row()}, {"data_epoch", position.epoch},
                     {"data_sample", position.sample}, {"data_positions", positions}, {"world_size", world}});
    ema.copy_to(*ema_vae);
    SafeTensors weights;
    module_weights_into(*ema_vae, weights);
    weights.metadata["step"] = std::to_string(step);
    safetensors_save(path_join(opt.out, kVaeWeightsFile), weights);
  };

  // Decoder fine-tuning: argmax tokens of a jointly trained encoder decode worse than the Gumbel
  // samples the decoder was trained on (every position at its mode is an atypical grid), so the last
  // updates freeze the encoder at its EMA weights and train the decoder on exactly the tokens the
  // prior will see.
  const int64_t finetune_start = tc.steps - tc.decoder_finetune_steps;
  auto freeze_encoder = [&] {
    torch::NoGradGuard no_grad;
    ema.copy_to(*ema_vae);
    std::vector<torch::Tensor> live = vae->encoder->parameters(), averaged = ema_vae->encoder->parameters();
    for (size_t i = 0; i < live.size(); ++i) live[i].copy_(averaged[i]);
    optimizer.freeze([](const std::string& name) { return name.rfind("encoder.", 0) == 0; });
  };
  VaeTrainResult result;
  ProgressBar bar("vae train", tc.steps - start, "step");
  const auto t0 = std::chrono::steady_clock::now();
  vae->train();
  for (int64_t step = start; step < tc.steps; ++step) {
    const double lr = cosine_schedule(step, tc.lr, tc.lr_end, tc.lr_steps);
    const bool finetune = step >= finetune_start;
    // With the encoder frozen its KL is a constant: the fine-tuning loss has no KL term.
    const double beta = finetune ? 0.0 : cosine_schedule(step, 0.0, tc.kl_weight, tc.kl_steps);
    const double tau = cosine_schedule(step, tc.tau_start, tc.tau_end, tc.tau_steps);
    // The Gumbel noise is drawn where the logits are, from a generator seeded per step.
    torch::Generator noise_gen = device.is_cpu() ? step_generator(opt.seed, step, 1)
                                                 : seeded_generator(device, step_seed(opt.seed, step, 1));
    if (step > start) batch = loader.next();  // the first batch was read before the loop
    position = batch.position;
    const torch::Tensor images = batch.images.to(device);
    torch::Tensor x = to_unit_float(images);
    const torch::Tensor x_mapped = map_pixels(x, vc.eps);

    // (Again on resuming inside that phase: the live encoder already equals its average.)
    if (finetune && (step == finetune_start || step == start)) freeze_encoder();
    torch::Tensor tokens, stats;
    VaeLoss loss;
    if (finetune) {
      {
        // The frozen encoder's argmax tokens of this batch's crops, in fp32 (16-bit weights take
        // 16-bit inputs): what the prior sees.
        torch::NoGradGuard no_grad;
        AutocastGuard autocast(opt.weights16, device.type(), plan.dtype);
        tokens = vae->encode_images(images);
      }
      {
        AutocastGuard autocast(plan.autocast, device.type(), plan.dtype);
        stats = vae->decoder->forward_tokens(tokens).to(torch::kFloat32);
      }
      loss = tc.decoder_finetune_loss == "mse" ? reconstruction_loss(x_mapped, stats, vc.eps)
                                               : likelihood_loss(x_mapped, stats);
    } else {
      torch::Tensor logits;
      {
        AutocastGuard autocast(plan.autocast, device.type(), plan.dtype);
        logits = vae->encoder(x_mapped).to(torch::kFloat32);
        // The relaxation and the likelihood stay in fp32.
        const torch::Tensor z = gumbel_softmax(logits, tau, noise_gen);
        stats = vae->decoder(z).to(torch::kFloat32);
      }
      loss = vae_loss(x_mapped, stats, logits, beta);
      tokens = logits.argmax(1);
    }
    if (opt.nonfinite_loss_at && opt.nonfinite_loss_at(step)) loss.loss = loss.loss * NAN;
    optimizer.zero_grad();
    if (dp) dp->zero_grad();
    if (dp) dp->before_backward(true);
    loss.loss.backward();
    double loss_value = loss.loss.item<double>();
    if (dp) {
      dp->after_backward();
      loss_value = dp->mean({loss_value})[0];  // a non-finite loss on any rank skips everywhere
    }
    // A skipped update (a non-finite loss or gradient) leaves weights, AdamW state and the EMA as
    // they were; a non-finite loss leaves the gradient scales alone too.
    const bool loss_finite = nonfinite.observe(loss_value);
    const bool skipped = !loss_finite || !scaled_update(scaled ? &scales : nullptr, blocks, precision == Precision::fp16,
                                                        vae->parameters(), std::numeric_limits<double>::infinity(),
                                                        optimizer, lr, step,
                                                        dp ? [&](std::vector<bool>& overflowed) { dp->sync_after_unscale(overflowed); }
                                                           : std::function<void(std::vector<bool>&)>());
    if (!skipped) ema.update(*vae, tc.ema_decay);

    torch::NoGradGuard no_grad;
    const torch::Tensor recon = unmap_pixels(torch::sigmoid(stats.slice(1, 0, 3)), vc.eps);
    const double mse = (recon - x).pow(2).mean().item<double>();
    const CodebookStats codes = codebook_stats(tokens, vc.vocab);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double img_per_s = (step - start + 1) * tc.batch * world / std::max(elapsed, 1e-9);
    if (step == start) result.first_loss = loss_value;
    result.images_per_second = img_per_s;
    result.last_loss = loss_value;
    nlohmann::json record = {{"step", step + 1}, {"loss", loss_value}, {"nll", loss.nll.item<double>()},
                             {"mse", mse}, {"psnr", psnr_from_mse(mse)},
                             {"tau", tau}, {"beta", beta}, {"lr", lr}, {"perplexity", codes.perplexity},
                             {"codes_used", codes.used}, {"img_per_s", img_per_s},
                             {"phase", finetune ? "decoder" : "joint"}, {"epoch", position.epoch},
                             {"data_wait", loader.wait_seconds() / std::max(elapsed, 1e-9)},
                             {"batch", tc.batch}, {"global_batch", tc.batch * world}, {"world_size", world}};
    if (dp) {
      record["comm_bytes"] = dp->take_comm_bytes();
      record["comm_wait_s"] = dp->take_comm_seconds();
    }
    if (!finetune) record["kl"] = loss.kl.item<double>();  // none with the encoder frozen
    if (scaled || skipped) record["skipped"] = skipped;
    if (scaled) record["grad_scales"] = scales.scales();
    if (!loss_finite) record["nonfinite_loss"] = true;
    if (metrics) metrics->write(record);
    if (!quiet) {
      char extra[200];
      if (finetune)
        std::snprintf(extra, sizeof(extra), "decoder only: loss %.4f psnr %.2f ppl %.0f used %.0f%% %.1f img/s",
                      loss_value, psnr_from_mse(mse), codes.perplexity, 100 * codes.used, img_per_s);
      else
        std::snprintf(extra, sizeof(extra),
                      "loss %.4f psnr %.2f kl %.4f tau %.3f beta %.2f ppl %.0f used %.0f%% %.1f img/s", loss_value,
                      psnr_from_mse(mse), loss.kl.item<double>(), tau, beta, codes.perplexity, 100 * codes.used, img_per_s);
      bar.update(step - start + 1, extra);
    }
    if (nonfinite.limit_reached()) {
      save_all(step + 1);
      throw Error(nonfinite.stop_message("vae train", step + 1, opt.out, "vae_train"));
    }
    const bool last = step + 1 == tc.steps;
    if (main_rank && ((step + 1) % opt.sample_every == 0 || last)) {
      char name[64];
      std::snprintf(name, sizeof(name), "step-%07lld.png", static_cast<long long>(step + 1));
      vae->eval();
      AutocastGuard autocast(opt.weights16, device.type(), plan.dtype);
      save_reconstruction_grid(vae, grid_images, path_join(path_join(opt.out, "recon"), name));
      vae->train();
    }
    if ((step + 1) % opt.save_every == 0 || last) save_all(step + 1);
  }
  if (!quiet) bar.finish();
  if (start >= tc.steps) save_all(tc.steps);
  if (dp) dp->check_replicas_agree();

  // Held-out PSNR and codebook use of the EMA weights, with argmax tokens as the prior sees them.
  ema.copy_to(*ema_vae);
  ema_vae->eval();
  const VaeEvaluation evaluation = vae_evaluate(ema_vae, held_out.images.size(0) > 0 ? held_out.images : grid_images);
  result.val_psnr = evaluation.psnr;
  result.val_codes_used = evaluation.codebook.used;
  result.skipped_images = loader.stats().skipped;
  result.steps = tc.steps;
  result.val_images = held_out.images.size(0);
  if (!quiet)
    std::fprintf(stderr,
                 "vae: %s PSNR %.2f dB, %.1f%% of codes used (perplexity %.1f) over %lld images "
                 "(EMA weights, argmax tokens); %lld unreadable images skipped; saved %s\n",
                 result.val_images > 0 ? "held-out" : "training-image (nothing is held out)", evaluation.psnr,
                 100 * evaluation.codebook.used, evaluation.codebook.perplexity,
                 static_cast<long long>(evaluation.images), static_cast<long long>(result.skipped_images),
                 opt.out.c_str());
  return result;
}

}  // namespace dalle

#include "dalle/train/vae_trainer.h"

#include "dalle/util/torch_api.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "dalle/bundle/bundle.h"
#include "dalle/data/image_folder.h"
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
  make_dirs(opt.out);
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
  const bool bf16 = precision == Precision::bf16;
  const bool scaled = precision != Precision::fp32;  // per-resblock gradient scales
  const c10::Device device = device_from_name(opt.device);
  // 16-bit on CUDA needs CUDA autocast and real fp16, which come with the GPU training issue.
  if (!device.is_cpu() && precision != Precision::fp32)
    throw Error("vae train: --precision " + opt.precision + " is CPU-only so far; use fp32 on " + opt.device +
                " (its convolutions use TF32 tensor cores)");

  ProgressBar load_bar("loading images", 0, "img");
  ImageSet data = image_set_load(opt.data, vc.image_size, /*require_captions=*/false, opt.threads,
                                 opt.max_images, [&](int64_t done, int64_t total) {
                                   if (opt.quiet) return;
                                   load_bar.set_total(total);
                                   load_bar.update(done);
                                 });
  if (!opt.quiet) load_bar.finish();
  const int64_t n_all = data.images.size(0);
  const int64_t n_val = n_all >= 64 ? std::max<int64_t>(8, n_all / 50) : 0;
  // On a GPU the whole training set moves there once (uint8: 12 KiB per 64x64 image).
  torch::Tensor train_images = data.images.narrow(0, 0, n_all - n_val).to(device);
  torch::Tensor val_images = data.images.narrow(0, n_val ? n_all - n_val : 0, n_val ? n_val : std::min<int64_t>(8, n_all));
  if (!opt.quiet)
    std::fprintf(stderr, "vae: %lld train / %lld held-out images (%lld skipped), %dx%d -> %dx%d tokens of %d\n",
                 static_cast<long long>(train_images.size(0)), static_cast<long long>(n_val),
                 static_cast<long long>(data.skipped), vc.image_size, vc.image_size, vc.grid(), vc.grid(), vc.vocab);

  torch::manual_seed(opt.seed);
  Dvae vae(vc);
  vae->to(device);
  // NHWC convolutions train 1.3x faster in fp32 and 1.4x in bf16 here (bench_vae).
  vae->to_channels_last();
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : vae->named_parameters(true)) params.emplace_back(item.key(), item.value());
  AdamW optimizer(params, {0.9, 0.999, 1e-8, tc.weight_decay},
                  [](const std::string& name) { return name.size() > 2 && name.compare(name.size() - 2, 2, ".w") == 0; });
  Ema ema(*vae);
  const std::vector<std::vector<torch::Tensor>> blocks = vae->resblock_parameters();
  GradScales scales(static_cast<int64_t>(blocks.size()));
  NonfiniteLosses nonfinite(tc.nonfinite_loss_limit);
  vae->set_resblock_runner(resblock_runner_for_training(precision, scales, opt.checkpoint_activations));
  int64_t start = 0;
  if (opt.resume) {
    nlohmann::json state = checkpoint_load(ckpt_path, *vae, optimizer, ema);
    start = state["step"].get<int64_t>();
    if (state.contains("grad_scales")) scales.load_state(state["grad_scales"]);
    nonfinite.set_in_a_row(state.value("nonfinite_in_a_row", 0));
  }
  config_save(path_join(opt.out, kConfigFile), config);
  if (!opt.quiet) std::fprintf(stderr, "config: %s\n", config_to_json(config).dump().c_str());

  MetricsLog metrics(path_join(opt.out, "metrics.jsonl"), opt.resume ? start : -1);
  make_dirs(path_join(opt.out, "recon"));
  Dvae ema_vae(vc);
  ema_vae->to(device);
  ema_vae->to_channels_last();

  auto save_all = [&](int64_t step) {
    checkpoint_save(ckpt_path, *vae, optimizer, ema,
                    {{"step", step}, {"seed", opt.seed}, {"grad_scales", scales.state()},
                     {"nonfinite_in_a_row", nonfinite.in_a_row()}});
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
    for (size_t i = 0; i < live.size(); ++i) {
      live[i].copy_(averaged[i]);
      live[i].mutable_grad().reset();  // undefined gradients: AdamW leaves these weights alone
    }
  };
  // The frozen encoder's tokens of every training image and of its mirror image, [2, N, grid, grid]:
  // computed once (in fp32, by `dalle vae encode`'s own call) instead of every step, where they
  // took a third of it.
  auto encode_training_set = [&] {
    torch::NoGradGuard no_grad;
    const int64_t n = train_images.size(0), chunk = 32;  // larger batches thrash the allocator
    ProgressBar encode_bar("encoding for decoder fine-tuning", 2 * n, "img");
    std::vector<torch::Tensor> sides;
    for (bool mirrored : {false, true}) {
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < n; i += chunk) {
        torch::Tensor images = train_images.narrow(0, i, std::min(chunk, n - i));  // NHWC uint8
        if (mirrored) images = images.flip({2});
        parts.push_back(vae->encode_images(images).to(torch::kInt32));  // 4 bytes a token
        if (!opt.quiet) encode_bar.update((mirrored ? n : 0) + i + parts.back().size(0));
      }
      sides.push_back(torch::cat(parts));
    }
    if (!opt.quiet) encode_bar.finish();
    return torch::stack(sides);
  };
  torch::Tensor finetune_tokens;

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
    torch::Generator gen = step_generator(opt.seed, step, 1);
    // The Gumbel noise is drawn where the logits are; on the CPU from the same generator as the flips.
    torch::Generator noise_gen = device.is_cpu() ? gen : seeded_generator(device, step_seed(opt.seed, step, 1));

    const torch::Tensor idx = torch::tensor(batch_indices(train_images.size(0), tc.batch, step, opt.seed)).to(device);
    torch::Tensor x = to_unit_float(train_images.index_select(0, idx));
    // Random horizontal flip (the dVAE's augmentation; captions play no part here).
    torch::Tensor flip = (torch::rand({x.size(0)}, gen) < 0.5).to(device);
    x = torch::where(flip.view({-1, 1, 1, 1}), x.flip({3}), x);
    const torch::Tensor x_mapped = map_pixels(x, vc.eps);

    if (finetune && step == finetune_start) freeze_encoder();
    if (finetune && !finetune_tokens.defined()) finetune_tokens = encode_training_set();
    torch::Tensor tokens, stats;
    VaeLoss loss;
    if (finetune) {
      tokens = finetune_tokens.index({flip.to(torch::kLong), idx});
      {
        CpuAutocastGuard autocast(bf16);
        stats = vae->decoder->forward_tokens(tokens).to(torch::kFloat32);
      }
      loss = tc.decoder_finetune_loss == "mse" ? reconstruction_loss(x_mapped, stats, vc.eps)
                                               : likelihood_loss(x_mapped, stats);
    } else {
      torch::Tensor logits;
      {
        CpuAutocastGuard autocast(bf16);
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
    loss.loss.backward();
    const double loss_value = loss.loss.item<double>();
    // A skipped update (a non-finite loss or gradient) leaves weights, AdamW state and the EMA as
    // they were; a non-finite loss leaves the gradient scales alone too.
    const bool loss_finite = nonfinite.observe(loss_value);
    const bool skipped = !loss_finite || !scaled_update(scaled ? &scales : nullptr, blocks, precision == Precision::fp16,
                                                        vae->parameters(), std::numeric_limits<double>::infinity(),
                                                        optimizer, lr, step);
    if (!skipped) ema.update(*vae, tc.ema_decay);

    torch::NoGradGuard no_grad;
    const torch::Tensor recon = unmap_pixels(torch::sigmoid(stats.slice(1, 0, 3)), vc.eps);
    const double mse = (recon - x).pow(2).mean().item<double>();
    const CodebookStats codes = codebook_stats(tokens, vc.vocab);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double img_per_s = (step - start + 1) * tc.batch / std::max(elapsed, 1e-9);
    if (step == start) result.first_loss = loss_value;
    result.images_per_second = img_per_s;
    result.last_loss = loss_value;
    nlohmann::json record = {{"step", step + 1}, {"loss", loss_value}, {"nll", loss.nll.item<double>()},
                             {"mse", mse}, {"psnr", psnr_from_mse(mse)},
                             {"tau", tau}, {"beta", beta}, {"lr", lr}, {"perplexity", codes.perplexity},
                             {"codes_used", codes.used}, {"img_per_s", img_per_s},
                             {"phase", finetune ? "decoder" : "joint"}};
    if (!finetune) record["kl"] = loss.kl.item<double>();  // none with the encoder frozen
    if (scaled || skipped) record["skipped"] = skipped;
    if (scaled) record["grad_scales"] = scales.scales();
    if (!loss_finite) record["nonfinite_loss"] = true;
    metrics.write(record);
    if (!opt.quiet) {
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
    if ((step + 1) % opt.sample_every == 0 || last) {
      char name[64];
      std::snprintf(name, sizeof(name), "step-%07lld.png", static_cast<long long>(step + 1));
      vae->eval();
      save_reconstruction_grid(vae, val_images.narrow(0, 0, std::min<int64_t>(8, val_images.size(0))),
                               path_join(path_join(opt.out, "recon"), name));
      vae->train();
    }
    if ((step + 1) % opt.save_every == 0 || last) save_all(step + 1);
  }
  if (!opt.quiet) bar.finish();
  if (start >= tc.steps) save_all(tc.steps);

  // Held-out PSNR and codebook use of the EMA weights, with argmax tokens as the prior sees them.
  ema.copy_to(*ema_vae);
  ema_vae->eval();
  const VaeEvaluation held_out = vae_evaluate(ema_vae, val_images);
  result.val_psnr = held_out.psnr;
  result.val_codes_used = held_out.codebook.used;
  result.steps = tc.steps;
  if (!opt.quiet)
    std::fprintf(stderr,
                 "vae: held-out PSNR %.2f dB, %.1f%% of codes used (perplexity %.1f) over %lld images "
                 "(EMA weights, argmax tokens); saved %s\n",
                 held_out.psnr, 100 * held_out.codebook.used, held_out.codebook.perplexity,
                 static_cast<long long>(held_out.images), opt.out.c_str());
  return result;
}

}  // namespace dalle

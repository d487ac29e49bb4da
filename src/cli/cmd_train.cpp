// dalle train: train the transformer prior on a token folder; the run folder is a bundle.
#include "cli/command.h"
#include "dalle/bundle/config.h"
#include "dalle/dist/process_group.h"
#include "dalle/train/prior_trainer.h"

namespace dalle::cli {

namespace {

struct TrainFlags {
  std::string config = "tiny";
  PriorTrainOptions options;
  int64_t seed = 0;
  bool no_samples = false;
  DistFlags dist;
  std::string fault_nonfinite_loss;  // tests: "STEP" or "STEP@RANK"
};

// --fault-nonfinite-loss STEP[@RANK]: that update's loss becomes NaN (on one rank, or on all).
std::function<bool(int64_t)> nonfinite_fault(const std::string& spec, int rank) {
  if (spec.empty()) return nullptr;
  const size_t at = spec.find('@');
  const int64_t step = std::stoll(spec.substr(0, at));
  const bool here = at == std::string::npos || std::stoi(spec.substr(at + 1)) == rank;
  return [step, here](int64_t s) { return here && s + 1 == step; };
}

int run_train(TrainFlags& f) {
  apply_threads(f.options.threads);
  f.options.quiet = quiet();
  f.options.seed = static_cast<uint64_t>(f.seed);
  if (f.no_samples) f.options.sample_prompts.clear();
  f.options.dist = join_distributed(f.dist, f.options.device);
  f.options.nonfinite_loss_at = nonfinite_fault(f.fault_nonfinite_loss, f.options.dist ? f.options.dist->rank() : 0);
  ModelConfig config;
  if (!f.options.resume) config = config_load(resolve_config_path(f.config));
  prior_train(config, f.options);
  return 0;
}

}  // namespace

void register_train(CLI::App& app, Action& action) {
  static TrainFlags f;
  PriorTrainOptions& o = f.options;
  CLI::App* cmd = app.add_subcommand("train", "Stage 2: train the transformer prior on image tokens + captions");
  cmd->add_option("-c,--config", f.config, "Config JSON or preset name (tiny, small, paper)")->capture_default_str();
  cmd->add_option("-d,--data", o.data,
                  "Token folder from `dalle vae encode` (streamed: any size); with --encode-on-the-fly, images")
      ->required();
  CLI::Option* on_the_fly =
      cmd->add_flag("--encode-on-the-fly", o.encode_on_the_fly,
                    "Read images (-d: a folder, shards or a TSV) and encode them with --vae as they stream, each "
                    "epoch with new crops (SPEC §3's augmentation), instead of pre-encoded tokens");
  on_the_fly->needs(cmd->add_option("--vae", o.vae, "The dVAE run or bundle that encodes the images (with --encode-on-the-fly)"));
  cmd->add_option("--workers", o.workers, "Image decoding threads (with --encode-on-the-fly)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-o,--output", o.out, "Run folder; becomes a model bundle for `dalle generate --model`")->required();
  cmd->add_option("--tokenizer", o.tokenizer, "Tokenizer file to use (default: learn one from the captions)");
  cmd->add_option("--steps", o.steps, "Total updates (default: the config's prior_train.steps)");
  cmd->add_option("-b,--batch", o.batch, "Samples per update on each rank (default: the config's prior_train.batch)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--accumulate", o.accumulate, "Micro-batches per update (gradient accumulation)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("-s,--seed", f.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "Continue the run in --output from its checkpoint");
  cmd->add_option("--val-every", o.val_every, "Validation loss every N steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--save-every", o.save_every, "Checkpoint every N steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--sample-every", o.sample_every, "Sample grid for fixed prompts every N steps")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--no-samples", f.no_samples, "Do not write sample grids");
  cmd->add_option("--shuffle-buffer", o.shuffle_buffer, "Token samples held to shuffle the stream across shards")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--val-samples", o.val_samples, "Held-out samples kept for the validation loss, at most")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--precision", o.precision,
                  "fp32; bf16 (matrix products in bf16 under autocast, oneDNN on CPU); fp16 (on CUDA real fp16 "
                  "products and activations inside the resblocks; emulated by fp16 rounding on CPU). Logits, "
                  "embeddings, gains and the identity path stay fp32; 16-bit modes use per-resblock gradient scaling")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  add_weights16_option(cmd, o.weights16, "matrices");
  cmd->add_flag("--checkpoint-activations", o.checkpoint_activations,
                "Recompute each resblock in backward instead of keeping its activations (less memory, ~1/3 more compute)");
  cmd->add_option("--powersgd-rank", o.powersgd_rank,
                  "Data-parallel runs: compress the resblocks' weight-matrix gradients with PowerSGD at this rank "
                  "(0 = off; default: the config's prior_train.powersgd_rank)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--shard-optimizer", o.shard_optimizer,
                "Data-parallel runs: each rank keeps AdamW moments and EMA for 1/N of the weights (ZeRO stage 1)");
  add_dist_options(cmd, f.dist);
  cmd->add_option("--fault-nonfinite-loss", f.fault_nonfinite_loss,
                  "Testing: make update STEP's loss NaN (STEP@RANK: on that rank only)")
      ->group("");  // hidden
  add_device_option(cmd, o.device, "training");
  add_tf32_option(cmd, o.tf32);
  add_threads_option(cmd, o.threads);
  add_progress_options(cmd);
  cmd->callback([&action] { action = [] { return run_train(f); }; });
}

}  // namespace dalle::cli

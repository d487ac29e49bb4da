// dalle rerank train: train the contrastive reranker that `dalle generate` ranks candidates with.
#include "cli/command.h"
#include "dalle/dist/process_group.h"
#include "dalle/bundle/config.h"
#include "dalle/rerank/rerank_trainer.h"

namespace dalle::cli {

namespace {

struct RerankFlags {
  std::string config = "default";
  RerankTrainOptions options;
  int64_t seed = 0;
  DistFlags dist;
};

int run_rerank_train(RerankFlags& f) {
  apply_threads(f.options.threads);
  f.options.quiet = quiet();
  f.options.seed = static_cast<uint64_t>(f.seed);
  f.options.dist = join_distributed(f.dist, f.options.device);
  ModelConfig config;
  if (!f.options.resume) config = config_load(resolve_config_path(f.config));
  rerank_train(config, f.options);
  return 0;
}

}  // namespace

void register_rerank(CLI::App& app, Action& action) {
  static RerankFlags f;
  RerankTrainOptions& o = f.options;
  CLI::App* rerank = app.add_subcommand("rerank", "The contrastive (CLIP-style) reranker of generated candidates");
  rerank->require_subcommand(1);
  CLI::App* cmd = rerank->add_subcommand(
      "train", "Train the reranker on image-caption pairs; copy RUN/rerank.safetensors into a bundle to use it");
  cmd->add_option("-c,--config", f.config, "Config JSON or preset name; its `rerank` section is used")
      ->capture_default_str();
  cmd->add_option("-d,--data", o.data, "Image-caption pairs: a folder with same-stem .txt captions, tar shards or a TSV")
      ->required();
  cmd->add_option("-o,--output", o.out, "Run folder: rerank.safetensors, config.json, tokenizer, metrics.jsonl")
      ->required();
  cmd->add_option("--tokenizer", o.tokenizer,
                  "Tokenizer file (use the bundle's tokenizer.json to rerank for it; default: learn one)");
  cmd->add_option("--steps", o.steps, "Total updates (default: the config's rerank.steps)");
  cmd->add_option("-s,--seed", f.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "Continue the run in --output from its checkpoint");
  cmd->add_option("--val-every", o.val_every, "Held-out retrieval accuracy every N steps")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--save-every", o.save_every, "Checkpoint every N steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-images", o.max_images, "Use only the first N pairs, in name order (default: all)");
  cmd->add_option("--workers", o.workers, "Threads that decode and augment images while the model trains")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--shuffle-buffer", o.shuffle_buffer, "Samples held to shuffle the stream across shards")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_dist_options(cmd, f.dist);
  add_device_option(cmd, o.device, "training");
  add_tf32_option(cmd, o.tf32);
  add_threads_option(cmd, o.threads);
  add_progress_options(cmd);
  cmd->callback([&action] { action = [] { return run_rerank_train(f); }; });
}

}  // namespace dalle::cli

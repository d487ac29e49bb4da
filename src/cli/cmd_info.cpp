// dalle info: sizes of a config or bundle, computed without allocating weights.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/dist/comm_plan.h"
#include "dalle/prior/cost.h"
#include "dalle/prior/masks.h"
#include "dalle/rerank/reranker.h"
#include "dalle/text/tokenizer.h"
#include "dalle/util/fs.h"

namespace dalle::cli {

namespace {

struct InfoFlags {
  std::string config;
  std::string model;
  int64_t batch = 1;
  int64_t world_size = 1;
  int64_t powersgd_rank = 0;
  double bandwidth_gbps = 100;
};

// The prior's gradient traffic per data-parallel update; PowerSGD's figures are null when it is off.
nlohmann::json distributed_json(const CommPlan& p) {
  const bool powersgd = p.powersgd_rank > 0;
  const auto when_on = [powersgd](double v) { return powersgd ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {
      {"world_size", p.world_size},
      {"powersgd_rank", p.powersgd_rank},
      {"powersgd_rank_capped_matrices", p.rank_capped_matrices},
      {"powersgd_min_effective_rank", p.min_effective_rank},
      {"compressed_matrices", p.compressed_matrices},
      {"compressed_params", p.compressed_params},
      {"uncompressed_params", p.uncompressed_params},
      {"bandwidth_gbps", p.bandwidth_gbps},
      {"comm_bytes_per_step_uncompressed", p.comm_bytes_per_step_uncompressed},
      {"comm_bytes_per_step_powersgd", when_on(p.comm_bytes_per_step_powersgd)},
      {"powersgd_compression", when_on(p.powersgd_compression)},
      {"comm_seconds_per_step_uncompressed", p.comm_seconds_per_step_uncompressed},
      {"comm_seconds_per_step_powersgd", when_on(p.comm_seconds_per_step_powersgd)},
  };
}

int run_info(const InfoFlags& f) {
  std::string path;
  if (!f.model.empty())
    path = path_join(f.model, kConfigFile);
  else
    path = resolve_config_path(f.config.empty() ? "tiny" : f.config);
  const ModelConfig c = config_load(path);
  const int grid = c.vae.grid();
  nlohmann::json masks = nlohmann::json::array();
  for (MaskType t : layer_mask_types(c.prior.layers)) masks.push_back(mask_type_name(t));
  const PriorCost cost = prior_cost(c.prior, grid, grid, c.vae.vocab, f.batch);
  const int64_t prior = cost.params;
  nlohmann::json out = {
      {"config", path},
      {"name", c.name},
      {"vae_encoder_params", dvae_encoder_param_count(c.vae)},
      {"vae_decoder_params", dvae_decoder_param_count(c.vae)},
      {"prior_params", prior},
      {"image_size", c.vae.image_size},
      {"image_grid", {grid, grid}},
      {"image_vocab", c.vae.vocab},
      {"text_len", c.prior.text_len},
      {"text_vocab", c.prior.text_vocab},
      {"sequence_len", c.prior.text_len + grid * grid},
      {"layer_masks", masks},
      {"train_flops_per_token", cost.train_flops_per_token},
      {"train_flops_per_token_dense_attention", cost.train_flops_per_token_dense},
      {"sample_flops_per_token", cost.sample_flops_per_token},
      {"memory_batch", f.batch},
      {"memory_weights_bytes", cost.weight_bytes},
      {"memory_optimizer_bytes", cost.optimizer_bytes},
      {"memory_activations_bytes", cost.activation_bytes},
      {"distributed", distributed_json(comm_plan(c, f.world_size, f.powersgd_rank, f.bandwidth_gbps))},
  };
  if (!f.model.empty()) {
    // What decides whether the bundle's reranker reads its caption ids right.
    out["tokenizer_fingerprint"] = Tokenizer::load(path_join(f.model, c.tokenizer_file)).fingerprint();
    const std::string rerank = path_join(f.model, kRerankWeightsFile);
    if (path_exists(rerank)) {
      std::string recorded;
      reranker_load(rerank, &recorded);
      out["reranker_tokenizer_fingerprint"] = recorded.empty() ? nlohmann::json(nullptr) : nlohmann::json(recorded);
    }
  }
  const std::string warning = conv_mask_warning({c.prior.text_len, grid, grid, c.prior.conv_kernel});
  out["conv_mask_coverage"] = conv_mask_coverage({c.prior.text_len, grid, grid, c.prior.conv_kernel});
  out["warnings"] = warning.empty() ? nlohmann::json::array() : nlohmann::json::array({warning});
  if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

void register_info(CLI::App& app, Action& action) {
  static InfoFlags f;
  CLI::App* cmd = app.add_subcommand("info", "Print a config's or bundle's sizes as JSON (no weights allocated)");
  cmd->add_option("-c,--config", f.config, "Config JSON or preset name (tiny, small, paper); default tiny");
  cmd->add_option("-m,--model", f.model, "A model bundle folder instead of a config");
  cmd->add_option("-b,--batch", f.batch, "Batch size for the activation-memory estimate")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--world-size", f.world_size, "Data-parallel ranks for the prior's communication plan")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--powersgd-rank", f.powersgd_rank,
                  "PowerSGD rank for the resblocks' weight gradients (P and Q in 16 bits); 0 = off")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--bandwidth-gbps", f.bandwidth_gbps,
                  "Each rank's link in Gbit/s: communication time = ring all-reduce bytes sent / bandwidth, "
                  "no latency or overlap")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([&action] { action = [] { return run_info(f); }; });
}

}  // namespace dalle::cli

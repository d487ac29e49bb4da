// dalle info: sizes of a config or bundle, computed without allocating weights.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
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
};

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
  cmd->callback([&action] { action = [] { return run_info(f); }; });
}

}  // namespace dalle::cli

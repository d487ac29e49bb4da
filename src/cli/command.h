// Each subcommand registers its flags on its own CLI11 sub-app and returns the action to run
// after parsing. main() owns error reporting: usage errors exit 2, runtime errors exit 1.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "dalle/prior/packed_linear.h"
#include "dalle/sample/sampler_settings.h"

namespace dalle {
class DistGroup;
}  // namespace dalle

namespace dalle::cli {

using Action = std::function<int()>;

void register_generate(CLI::App& app, Action& action);
void register_data(CLI::App& app, Action& action);
void register_tokenizer(CLI::App& app, Action& action);
void register_vae(CLI::App& app, Action& action);
void register_train(CLI::App& app, Action& action);
void register_info(CLI::App& app, Action& action);
void register_plot(CLI::App& app, Action& action);
void register_rerank(CLI::App& app, Action& action);
void register_convert(CLI::App& app, Action& action);
void register_quantize(CLI::App& app, Action& action);
void register_serve(CLI::App& app, Action& action);
void register_eval(CLI::App& app, Action& action);

// -t/--threads on a subcommand; apply_threads() sets libtorch's thread count from it.
void add_threads_option(CLI::App* app, int& threads);
void apply_threads(int threads);

// --weights fp32|bf16|int8 on a command that samples; weights_choice() turns the flag into
// bundle_load's argument (empty: the format the bundle stores).
void add_weights_option(CLI::App* app, std::string& weights);
std::optional<WeightFormat> weights_choice(const std::string& weights);

// --device cpu|cuda[:N]|auto on a command that runs a model (`what`: "training", "sampling", ...).
// A name this build cannot serve (CUDA on a CPU-only build, a GPU that is not there) is a usage
// error: one line, exit 2.
void add_device_option(CLI::App* app, std::string& device, const std::string& what);
// --tf32 on a trainer (util/device.h allow_tf32).
void add_tf32_option(CLI::App* app, bool& tf32);
// --weights16 for a trainer whose resblocks hold weight `what` (matrices, kernels).
void add_weights16_option(CLI::App* app, bool& weights16, const std::string& what);

// --temperature, --top-k, --top-p and --cfg-scale on a command that samples. Each one not given
// comes from the bundle's recommended settings (its config's `sample` section): sampler_choice().
struct SamplerFlags {
  SamplerSettings given;
  CLI::Option* temperature = nullptr;
  CLI::Option* top_k = nullptr;
  CLI::Option* top_p = nullptr;
  CLI::Option* cfg_scale = nullptr;
};
void add_sampler_options(CLI::App* app, SamplerFlags& flags);
SamplerSettings sampler_choice(const SamplerFlags& flags, const SamplerSettings& bundle_settings);

// --quiet and --log-every on a long-running subcommand; main() applies them after parsing
// (util/progress.h). Trainers read quiet() for their status lines.
void add_progress_options(CLI::App* app);
void apply_progress_options();
bool quiet();

// Data-parallel training (dalle/dist/): --dist-timeout and --dist-backend on a trainer;
// join_distributed() joins the process group the launcher's environment describes (torchrun,
// srun, or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT by hand) for a trainer on `device` (its
// --device), nullptr when it describes none. After joining, errors main() reports name this rank.
struct DistFlags {
  double timeout_seconds = 600;
  std::string backend = "auto";
};
void add_dist_options(CLI::App* app, DistFlags& flags);
std::shared_ptr<DistGroup> join_distributed(const DistFlags& flags, const std::string& device);
// "rank R of W: " in a distributed run, else "".
const std::string& rank_prefix();

// The shipped model: $DALLE_MODEL, else models/default next to the build tree or the cwd.
std::string default_model_path();
// The preset given by --config (a path, or the name of a file in configs/).
std::string resolve_config_path(const std::string& name_or_path);

}  // namespace dalle::cli

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "cli/command.h"
#include "dalle/dist/process_group.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/progress.h"
#include "dalle/util/threads.h"
#include "source_dir.h"

namespace dalle::cli {

namespace fs = std::filesystem;

void add_threads_option(CLI::App* app, int& threads) {
  app->add_option("-t,--threads", threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) { set_thread_count(threads); }

void add_weights_option(CLI::App* app, std::string& weights) {
  app->add_option("--weights", weights,
                  "Prior weights for sampling: fp32, bf16 (half the bytes per token) or int8 (per-channel weight-only, "
                  "a quarter); bf16 and int8 also decode images with bf16 dVAE weights (default: as the bundle stores "
                  "them, fp32 unless made by `dalle quantize`)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
}

void add_device_option(CLI::App* app, std::string& device, const std::string& what) {
  app->add_option("--device", device,
                  "Where " + what + " runs: cpu, cuda (the first GPU), cuda:N, or auto (a GPU when one is visible, "
                  "else the CPU). CUDA needs dalle built against a CUDA libtorch (scripts/build-cuda.sh); files are "
                  "the same either way")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& name) {
            try {
              device_from_name(name);
              return std::string();
            } catch (const Error& e) {
              return std::string(e.what());
            }
          },
          "DEVICE"));
}

void add_tf32_option(CLI::App* app, bool& tf32) {
  app->add_flag("--tf32", tf32,
                "On CUDA, let fp32 matrix products use TF32 tensor cores (10-bit mantissa inputs, fp32 sums), as "
                "convolutions do by default; no effect on a CPU");
}

void add_weights16_option(CLI::App* app, bool& weights16, const std::string& what) {
  app->add_flag("--weights16", weights16,
                "Store the resblocks' weight " + what + " in the precision's 16-bit type, the paper's memory scheme: "
                "no fp32 master copy, AdamW moments in 16 bits (bf16 for fp16 weights' second moment), each update "
                "computed in fp32 and rounded once; the EMA and the saved weights stay fp32. Needs --precision bf16, "
                "or fp16 on CUDA");
}

std::optional<WeightFormat> weights_choice(const std::string& weights) {
  if (weights.empty()) return std::nullopt;
  return parse_weight_format(weights);
}

void add_sampler_options(CLI::App* app, SamplerFlags& f) {
  const std::string from_bundle = " (default: the model's config, its `sample` section; without one, ";
  f.temperature = app->add_option("--temperature", f.given.temperature,
                                  "Sampling temperature" + from_bundle + "1 as in the paper; 0 = argmax)")
                      ->check(CLI::Range(0.0, 100.0));
  f.top_k = app->add_option("--top-k", f.given.top_k,
                            "Sample only from the k most likely tokens" + from_bundle + "0 = off; 1 = argmax)")
                ->check(CLI::NonNegativeNumber);
  f.top_p = app->add_option("--top-p", f.given.top_p,
                            "Nucleus sampling: the smallest token set with this much mass" + from_bundle + "1 = off)")
                ->check(CLI::Range(0.0, 1.0));
  f.cfg_scale = app->add_option("--cfg-scale", f.given.cfg_scale,
                                "Classifier-free guidance: > 1 follows the caption more closely, for a model trained "
                                "with prior_train.caption_drop > 0" + from_bundle + "1 = off)")
                    ->check(CLI::Range(0.0, 100.0));
}

SamplerSettings sampler_choice(const SamplerFlags& f, const SamplerSettings& bundle_settings) {
  SamplerSettings s = bundle_settings;
  if (f.temperature->count() > 0) s.temperature = f.given.temperature;
  if (f.top_k->count() > 0) s.top_k = f.given.top_k;
  if (f.top_p->count() > 0) s.top_p = f.given.top_p;
  if (f.cfg_scale->count() > 0) s.cfg_scale = f.given.cfg_scale;
  return s;
}

namespace {

ProgressSettings& progress_flags() {
  static ProgressSettings flags;
  return flags;
}

}  // namespace

void add_progress_options(CLI::App* app) {
  ProgressSettings& f = progress_flags();
  app->add_flag("-q,--quiet", f.quiet, "No progress bars or status lines (errors and warnings still show)");
  app->add_option("--log-every", f.log_every_seconds,
                  "When stderr is not a terminal (a log file), write a plain progress line at most every N "
                  "seconds, plus each phase's last line (0: last lines only)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
}

void apply_progress_options() { progress_configure(progress_flags()); }

bool quiet() { return progress_flags().quiet; }

namespace {

// Where configs/ and models/ may be: next to build/bin/dalle (../../), an install prefix's
// share/dalle, the working directory, and the source tree this binary was built from.
std::vector<fs::path> search_roots() {
  std::vector<fs::path> roots;
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = 0;
    const fs::path exe_dir = fs::path(buf).parent_path();
    roots.push_back(exe_dir.parent_path().parent_path());
    roots.push_back(exe_dir.parent_path() / "share" / "dalle");
  }
  roots.push_back(fs::current_path());
  roots.push_back(DALLE_SOURCE_TREE);
  return roots;
}

}  // namespace

namespace {

std::string& rank_prefix_storage() {
  static std::string prefix;
  return prefix;
}

}  // namespace

void add_dist_options(CLI::App* app, DistFlags& flags) {
  app->add_option("--dist-timeout", flags.timeout_seconds,
                  "Data-parallel runs (launched by torchrun, srun, or with RANK, WORLD_SIZE, MASTER_ADDR and "
                  "MASTER_PORT set): seconds to wait for the other ranks to join and for each collective; a rank "
                  "that dies makes the others exit with an error within this time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--dist-backend", flags.backend,
                  std::string("Data-parallel runs: the c10d backend. auto: NCCL when the ranks train on GPUs and this "
                              "build has it, else Gloo; gloo (CPU tensors, GPU tensors through host copies); nccl "
                              "(GPU to GPU; this build: ") +
                      (nccl_built() ? "has NCCL)" : "no NCCL)"))
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->check([](const std::string& value) {
        return value == "nccl" && !nccl_built() ? std::string("this build has no NCCL (a CPU libtorch, or NCCL's headers "
                                                              "were not found at configure time); use gloo")
                                                : std::string();
      });
}

std::shared_ptr<DistGroup> join_distributed(const DistFlags& flags, const std::string& device) {
  std::shared_ptr<DistGroup> group = dist_join_from_env(flags.timeout_seconds, flags.backend, device);
  if (group)
    rank_prefix_storage() = "rank " + std::to_string(group->rank()) + " of " + std::to_string(group->world()) + ": ";
  return group;
}

const std::string& rank_prefix() { return rank_prefix_storage(); }

std::string default_model_path() {
  if (const char* env = std::getenv("DALLE_MODEL"); env && *env) return env;
  for (const auto& root : search_roots())
    if (fs::exists(root / "models" / "default" / "config.json")) return (root / "models" / "default").string();
  throw Error("no default model found (looked for models/default next to the build, in the working directory and in the source tree); pass --model BUNDLE");
}

std::string resolve_config_path(const std::string& name) {
  if (fs::exists(name)) return name;
  for (const auto& root : search_roots()) {
    const fs::path candidate = root / "configs" / (name + ".json");
    if (fs::exists(candidate)) return candidate.string();
  }
  throw Error(name + ": no such config file or preset (presets live in configs/)");
}

}  // namespace dalle::cli

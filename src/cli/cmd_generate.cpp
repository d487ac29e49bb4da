// dalle generate: caption -> PNG images on a model bundle.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/sample/generate.h"
#include "dalle/util/error.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct GenerateFlags {
  std::string prompt;
  std::string model;
  std::string output = "output.png";
  int count = 4;
  int batch = 4;
  int64_t seed = -1;
  double temperature = 1.0;
  int top_k = 0;
  double top_p = 1.0;
  double cfg_scale = 1.0;
  int threads = 0;
  bool json = false;
};

// out.png -> out-1.png, out-2.png, ...
std::string numbered(const std::string& path, int i) {
  std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(i) + p.extension().string())).string();
}

int run_generate(const GenerateFlags& f) {
  apply_threads(f.threads);
  const std::string model = f.model.empty() ? default_model_path() : f.model;
  const uint64_t seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : std::random_device{}() & 0x7fffffff;
  Bundle bundle = bundle_load(model);
  GenerateRequest request;
  request.prompt = f.prompt;
  request.count = f.count;
  request.batch = std::min(f.batch, f.count);
  request.seed = seed;
  request.sampler = {f.temperature, f.top_k, f.top_p, f.cfg_scale};
  if (!f.json) std::fprintf(stderr, "generate: \"%s\" with %s, seed %llu\n", f.prompt.c_str(), model.c_str(),
                            static_cast<unsigned long long>(seed));
  ProgressBar bar("sampling", 1, "tok");
  const std::vector<GeneratedImage> images = generate_images(bundle, request, [&](int64_t done, int64_t total) {
    bar.set_total(total);
    bar.update(done);
  });
  bar.finish();

  char settings[256];
  std::snprintf(settings, sizeof(settings), "temperature: %g, top_k: %d, top_p: %g, cfg_scale: %g, n: %d, batch: %d",
                f.temperature, f.top_k, f.top_p, f.cfg_scale, f.count, request.batch);
  auto metadata = [&](int index) {
    return PngText{{"prompt", f.prompt},
                   {"seed", std::to_string(seed)},
                   {"index", std::to_string(index)},
                   {"sampler", settings},
                   {"model", bundle.config.name + " (" + std::filesystem::path(model).filename().string() + ")"},
                   {"software", std::string("dalle.cpp ") + DALLE_VERSION}};
  };
  std::vector<Image> tiles;
  nlohmann::json report = nlohmann::json::array();
  if (images.size() == 1) {
    image_save_png(f.output, images[0].image, metadata(0));
    report.push_back({{"path", f.output}, {"index", 0}});
  } else {
    for (const auto& g : images) {
      const std::string path = numbered(f.output, g.index + 1);
      image_save_png(path, g.image, metadata(g.index));
      report.push_back({{"path", path}, {"index", g.index}});
      tiles.push_back(g.image);
    }
    image_save_png(f.output, image_grid(tiles, std::min<int>(4, static_cast<int>(tiles.size()))), metadata(-1));
  }
  if (f.json) {
    std::printf("%s\n", nlohmann::json{{"prompt", f.prompt}, {"seed", seed}, {"grid", f.output}, {"images", report}}
                            .dump(2).c_str());
  } else {
    std::fprintf(stderr, "generate: wrote %s%s (seed %llu)\n", f.output.c_str(),
                 images.size() > 1 ? " (grid) and one PNG per image" : "", static_cast<unsigned long long>(seed));
  }
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, Action& action) {
  static GenerateFlags f;
  CLI::App* cmd = app.add_subcommand("generate", "Make images from a caption with a model bundle");
  cmd->add_option("-p,--prompt", f.prompt, "The caption to draw")->required();
  cmd->add_option("-m,--model", f.model, "Model bundle folder (default: the shipped models/default)");
  cmd->add_option("-o,--output", f.output, "Output PNG; with -n > 1 a grid, plus OUT-1.png ... per image")
      ->capture_default_str();
  cmd->add_option("-n,--count", f.count, "Number of images to make")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("-b,--batch", f.batch, "Images sampled together (memory vs. speed)")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("-s,--seed", f.seed, "Random seed (default: random; printed so a run can be repeated)");
  cmd->add_option("--temperature", f.temperature, "Sampling temperature (paper: 1; 0 = argmax)")
      ->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", f.top_k, "Sample only from the k most likely tokens (0 = off, 1 = argmax)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", f.top_p, "Nucleus sampling: smallest token set with this much mass (1 = off)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--cfg-scale", f.cfg_scale,
                  "Classifier-free guidance: > 1 follows the caption more closely (1 = off; best with a model "
                  "trained with prior_train.caption_drop > 0)")
      ->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_flag("--json", f.json, "Print the written paths as JSON on stdout");
  add_threads_option(cmd, f.threads);
  cmd->callback([&action] { action = [] { return run_generate(f); }; });
}

}  // namespace dalle::cli

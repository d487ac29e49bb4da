// dalle generate: caption -> PNG images on a model bundle.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/sample/generate.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct GenerateFlags {
  std::string prompt;
  std::string model;
  std::string output = "output.png";
  int count = 8;
  int keep = 4;
  bool keep_given = false;  // without -k, K = min(4, N)
  int batch = 0;  // 0: min(N, 32), enough rows that a step is not bound by reading the weights
  int64_t seed = -1;
  SamplerFlags sampler;
  std::string init_image;
  int init_rows = 0;
  int threads = 0;
  std::string weights;
  std::string device = "cpu";
  bool json = false;
};

// out.png -> out-1.png, out-2.png, ...
std::string numbered(const std::string& path, int i) {
  std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(i) + p.extension().string())).string();
}

int run_generate(GenerateFlags& f) {
  if (!f.keep_given) f.keep = std::min(f.keep, f.count);
  if (f.keep > f.count)
    throw Error("-k " + std::to_string(f.keep) + " keeps more images than -n " + std::to_string(f.count) +
                " samples (K must be at most N)");
  if (!f.init_image.empty() && f.init_rows == 0) throw Error("--init-image needs --init-rows R (rows to keep)");
  if (f.init_image.empty() && f.init_rows != 0) throw Error("--init-rows needs --init-image IMG");
  apply_threads(f.threads);
  const std::string model = f.model.empty() ? default_model_path() : f.model;
  const uint64_t seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : std::random_device{}() & 0x7fffffff;
  GenerateRequest request;
  if (!f.init_image.empty()) request.init_image = image_load(f.init_image);
  Bundle bundle = bundle_load(model, weights_choice(f.weights), device_from_name(f.device));
  request.prompt = f.prompt;
  request.count = f.count;
  request.keep = f.keep;
  request.batch = std::min(f.batch > 0 ? f.batch : 32, f.count);
  request.seed = seed;
  request.sampler = sampler_choice(f.sampler, bundle.config.sample);
  request.init_rows = f.init_rows;
  std::fprintf(stderr, "generate: \"%s\" with %s (%s weights on %s), seed %llu, %d candidates in batches of %d, keeping %d\n",
               f.prompt.c_str(), model.c_str(), weight_format_name(bundle.weights).c_str(), bundle.device.str().c_str(),
               static_cast<unsigned long long>(seed), f.count, request.batch, f.keep);
  const SamplerSettings& s = request.sampler;
  std::fprintf(stderr, "generate: temperature %g, top-k %d, top-p %g, guidance (cfg) scale %g\n", s.temperature,
               s.top_k, s.top_p, s.cfg_scale);
  if (bundle.reranker)
    std::fprintf(stderr, "generate: reranking with %s\n", kRerankWeightsFile);
  else
    std::fprintf(stderr, "generate: no %s in the bundle: not reranking, keeping the first %d of %d\n",
                 kRerankWeightsFile, f.keep, f.count);
  ProgressBar bar("sampling", 1, "tok");
  const std::vector<GeneratedImage> images = generate_images(bundle, request, [&](int64_t done, int64_t total) {
    bar.set_total(total);
    bar.update(done);
  });
  bar.finish();

  const std::string model_name = bundle.config.name + " (" + std::filesystem::path(model).filename().string() + ")";
  const std::string init_name = f.init_image.empty() ? "" : std::filesystem::path(f.init_image).filename().string();
  auto metadata = [&](const GeneratedImage* g, int rank) {
    return generation_png_text(bundle, model_name, request, init_name, g, rank);
  };
  std::vector<Image> tiles;
  nlohmann::json report = nlohmann::json::array();
  for (size_t r = 0; r < images.size(); ++r) {
    const GeneratedImage& g = images[r];
    const int rank = static_cast<int>(r) + 1;
    const std::string path = images.size() == 1 ? f.output : numbered(f.output, rank);
    image_save_png(path, g.image, metadata(&g, rank));
    nlohmann::json entry = {{"path", path}, {"rank", rank}, {"candidate", g.index + 1}};
    entry["score"] = bundle.reranker ? nlohmann::json(g.score) : nlohmann::json(nullptr);
    report.push_back(entry);
    tiles.push_back(g.image);
  }
  if (images.size() > 1)
    image_save_png(f.output, image_grid(tiles, std::min<int>(4, static_cast<int>(tiles.size()))), metadata(nullptr, 0));
  if (f.json)
    std::printf("%s\n", nlohmann::json{{"prompt", f.prompt}, {"seed", seed}, {"grid", images.size() > 1 ? f.output : ""},
                                        {"reranked", static_cast<bool>(bundle.reranker)}, {"images", report}}
                             .dump(2).c_str());
  const std::string singles = images.size() > 1 ? " (grid, " + std::string(bundle.reranker ? "best first" : "in sampling order") +
                                                    ") and " + numbered(f.output, 1) + " ... " +
                                                    numbered(f.output, static_cast<int>(images.size()))
                                              : "";
  std::fprintf(stderr, "generate: wrote %s%s; repeat with -s %llu\n", f.output.c_str(), singles.c_str(),
               static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, Action& action) {
  static GenerateFlags f;
  CLI::App* cmd = app.add_subcommand("generate", "Make images from a caption with a model bundle");
  cmd->add_option("-p,--prompt", f.prompt, "The caption to draw")->required();
  cmd->add_option("-m,--model", f.model, "Model bundle folder (default: the shipped models/default)");
  cmd->add_option("-o,--output", f.output, "Output PNG: the grid of the K kept images, plus OUT-1.png ... OUT-K.png best first (K = 1: just OUT)")
      ->capture_default_str();
  cmd->add_option("-n,--count", f.count, "Candidates to sample (N); the reranker keeps the best K")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("-k,--keep", f.keep, "Images to keep and write (K <= N; default min(4, N)), best rerank score first")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("-b,--batch", f.batch,
                  "Candidates sampled together (default: min(N, 32): one step reads the weights once for every row)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("-s,--seed", f.seed, "Random seed (default: random; printed so a run can be repeated)");
  add_sampler_options(cmd, f.sampler);
  cmd->add_option("--init-image", f.init_image,
                  "Image prompt: keep the top --init-rows token rows of this image (dVAE-encoded) and sample the rest");
  cmd->add_option("--init-rows", f.init_rows, "Token rows of --init-image to keep (1 .. grid rows - 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", f.json, "Print each kept image's path, rank and rerank score as JSON on stdout");
  add_weights_option(cmd, f.weights);
  add_device_option(cmd, f.device, "sampling");
  add_threads_option(cmd, f.threads);
  add_progress_options(cmd);
  cmd->callback([&action, cmd] {
    f.keep_given = cmd->count("--keep") > 0;
    action = [] { return run_generate(f); };
  });
}

}  // namespace dalle::cli

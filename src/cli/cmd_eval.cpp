// dalle eval: measure a model. `train-judge` trains the shapes judge; `shapes` is the zero-shot
// composition benchmark; `fid` the Fréchet distance to real images over a blur sweep.
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/eval/fid_eval.h"
#include "dalle/eval/judge.h"
#include "dalle/eval/shapes_eval.h"
#include "dalle/util/device.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/progress.h"

namespace dalle::cli {

namespace {

struct EvalFlags {
  std::string model;
  std::string out;
  std::string judge;
  int size = 32;
  int64_t judge_steps = 1200;
  int64_t seed = 0;
  int threads = 0;
  std::string weights;
  std::string device = "cpu";
  int seeds = 2;
  ShapesEvalOptions shapes;
  SamplerFlags shapes_sampler;
  std::string real;
  std::string blur = "0,1,2,4,8";
  FidEvalOptions fid;
  SamplerFlags fid_sampler;
};

std::string percent(double x) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * x);
  return buf;
}

// Trains a judge for `size`-pixel images and reports its accuracy on fresh renders.
Judge train_judge(int size, int64_t steps, uint64_t seed, const c10::Device& device, JudgeAccuracy* accuracy) {
  JudgeTrainOptions o;
  o.device = device;
  o.image_size = size;
  o.steps = steps;
  o.seed = seed;
  ProgressBar bar("judge", steps, "step");
  o.progress = [&](int64_t step, double loss) {
    char status[48];
    std::snprintf(status, sizeof(status), "loss %.3f", loss);
    bar.update(step, status);
  };
  Judge judge = judge_train(o);
  bar.finish();
  *accuracy = judge_accuracy(judge, 2000, seed + 1000);
  std::fprintf(stderr,
               "judge: %dx%d, on 2000 fresh renders: colour %s, shape %s, both %s; two objects' layout and order %s\n",
               size, size, percent(accuracy->colour).c_str(), percent(accuracy->shape).c_str(),
               percent(accuracy->both).c_str(), percent(accuracy->relation).c_str());
  return judge;
}

int run_train_judge(const EvalFlags& f) {
  apply_threads(f.threads);
  JudgeAccuracy accuracy;
  Judge judge = train_judge(f.size, f.judge_steps, static_cast<uint64_t>(f.seed), device_from_name(f.device), &accuracy);
  judge_save(judge, f.out, accuracy);
  std::fprintf(stderr, "judge: wrote %s\n", f.out.c_str());
  return 0;
}

int run_shapes(EvalFlags& f) {
  apply_threads(f.threads);
  const std::string model = f.model.empty() ? default_model_path() : f.model;
  Bundle bundle = bundle_load(model, weights_choice(f.weights), device_from_name(f.device));
  const int size = bundle.config.vae.image_size;
  f.shapes.sampler = sampler_choice(f.shapes_sampler, bundle.config.sample);
  make_dirs(f.out);
  // A judge given, or the one an earlier run left in OUT, or a new one (a few minutes).
  const std::string kept = path_join(f.out, "judge.safetensors");
  const std::string judge_path = !f.judge.empty() ? f.judge : kept;
  Judge judge{nullptr};
  JudgeAccuracy accuracy;
  if (path_exists(judge_path)) {
    judge = judge_load(judge_path, size);
    judge->to(bundle.device);
    accuracy = judge_accuracy(judge, 2000, static_cast<uint64_t>(f.seed) + 1000);
    std::fprintf(stderr, "eval shapes: judge %s reads fresh renders right: %s (layout and order %s)\n",
                 judge_path.c_str(), percent(accuracy.both).c_str(), percent(accuracy.relation).c_str());
  } else {
    if (!f.judge.empty()) throw file_error(f.judge, "no such judge file");
    std::fprintf(stderr, "eval shapes: training a judge for %dx%d images (saved as %s for later runs)\n", size, size,
                 kept.c_str());
    judge = train_judge(size, f.judge_steps, static_cast<uint64_t>(f.seed), bundle.device, &accuracy);
    judge_save(judge, kept, accuracy);
  }
  f.shapes.seeds.clear();
  for (int s = 0; s < f.seeds; ++s) f.shapes.seeds.push_back(static_cast<uint64_t>(f.seed) + s);
  ProgressBar bar("sampling", 0, "img");
  f.shapes.progress = [&](int64_t done, int64_t total) {
    bar.set_total(total);
    bar.update(done);
  };
  const nlohmann::json report = shapes_eval(bundle, judge, accuracy, f.shapes, f.out);
  bar.finish();
  std::fprintf(stderr, "%s", read_file_text(path_join(f.out, "report.md")).c_str());
  std::fprintf(stderr, "eval shapes: wrote %s/report.json, report.md, rerank_curve.png, heldout_grid.png\n",
               f.out.c_str());
  return 0;
}

// "0,1,2,4,8" -> radii; throws naming the bad item.
std::vector<double> parse_radii(const std::string& list) {
  std::vector<double> radii;
  std::stringstream items(list);
  for (std::string r; std::getline(items, r, ',');) {
    char* end = nullptr;
    const double v = std::strtod(r.c_str(), &end);
    if (r.empty() || *end != '\0' || !(v >= 0 && v <= 64)) throw Error("'" + r + "' is not a radius in 0..64 pixels");
    radii.push_back(v);
  }
  if (radii.empty()) throw Error("no radii");
  return radii;
}

int run_fid(EvalFlags& f) {
  apply_threads(f.threads);
  const std::string model = f.model.empty() ? default_model_path() : f.model;
  Bundle bundle = bundle_load(model, weights_choice(f.weights), device_from_name(f.device));
  f.fid.sampler = sampler_choice(f.fid_sampler, bundle.config.sample);
  f.fid.blur = parse_radii(f.blur);
  f.fid.seed = static_cast<uint64_t>(f.seed);
  ProgressBar bar("sampling", 0, "img");
  std::string phase = "sampling";
  f.fid.progress = [&](const std::string& what, int64_t done, int64_t total) {
    if (what != phase) {
      bar.finish();
      std::fprintf(stderr, "eval fid: features at %zu blur radii\n", f.fid.blur.size());
      phase = what;
    }
    bar.set_total(total);
    bar.update(done);
  };
  fid_eval(bundle, f.real, f.fid, f.out);
  bar.finish();
  std::fprintf(stderr, "%s", read_file_text(path_join(f.out, "fid.md")).c_str());
  std::fprintf(stderr, "eval fid: wrote %s/fid.json, fid.md, fid_blur.png and generated/\n", f.out.c_str());
  return 0;
}

}  // namespace

void register_eval(CLI::App& app, Action& action) {
  static EvalFlags f;
  CLI::App* cmd = app.add_subcommand("eval", "Measure a model: zero-shot shapes benchmark, Frechet distance");
  cmd->require_subcommand(1);

  CLI::App* judge = cmd->add_subcommand(
      "train-judge", "Train the shapes judge (a small CNN that reads colour, shape and layout) on fresh renders");
  judge->add_option("--size", f.size, "Image side it reads: the model's image size")->capture_default_str()
      ->check(CLI::Range(16, 1024));
  judge->add_option("-o,--output", f.out, "The judge's .safetensors file")->required();
  judge->add_option("--steps", f.judge_steps, "Training steps (batch 64 of fresh renders)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  judge->add_option("-s,--seed", f.seed, "Random seed")->capture_default_str();
  add_device_option(judge, f.device, "training");
  add_threads_option(judge, f.threads);
  add_progress_options(judge);
  judge->callback([&action] { action = [] { return run_train_judge(f); }; });

  CLI::App* shapes = cmd->add_subcommand(
      "shapes", "Zero-shot composition benchmark on the shapes world: held-out colour-shape pairs and relations");
  shapes->add_option("-m,--model", f.model, "Model bundle (default: the shipped models/default)");
  shapes->add_option("-o,--output", f.out,
                     "Folder: report.json, report.md, rerank_curve.png, heldout_grid.png, samples.jsonl (a rerun "
                     "with the same settings continues from it), judge.safetensors")->required();
  shapes->add_option("--judge", f.judge,
                     "Judge from `eval train-judge` (default: OUT/judge.safetensors, trained there when missing)");
  shapes->add_option("--judge-steps", f.judge_steps, "Steps when a judge is trained here")->capture_default_str();
  shapes->add_option("-n,--candidates", f.shapes.candidates, "Candidates per prompt and seed (N, reranked)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  shapes->add_option("--seeds", f.seeds, "Seeds per prompt")->capture_default_str()->check(CLI::Range(1, 1000));
  shapes->add_option("-s,--seed", f.seed, "First seed")->capture_default_str();
  shapes->add_option("--split", f.shapes.split, "Prompts: all, seen (pairs in the train split) or heldout (zero-shot)")
      ->capture_default_str()->check(CLI::IsMember({"all", "seen", "heldout"}));
  shapes->add_option("--templates", f.shapes.templates, "Single-object phrasings per pair (1-3)")
      ->capture_default_str()->check(CLI::Range(1, 3));
  shapes->add_option("--relations", f.shapes.relation_prompts, "Two-object prompts per split (0 = none)")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  shapes->add_option("--ceiling-renders", f.shapes.ceiling_renders, "Fresh renders per prompt through the dVAE (the ceiling)")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  shapes->add_option("--max-prompts", f.shapes.max_prompts, "At most this many prompts per kind and split (0 = all): quick runs")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  shapes->add_option("-b,--batch", f.shapes.batch, "Candidates sampled together")->capture_default_str()
      ->check(CLI::Range(1, 1024));
  shapes->add_flag("--restart", f.shapes.restart, "Ignore partial results in OUT and start over");
  add_sampler_options(shapes, f.shapes_sampler);
  add_weights_option(shapes, f.weights);
  add_device_option(shapes, f.device, "sampling");
  add_threads_option(shapes, f.threads);
  add_progress_options(shapes);
  shapes->callback([&action] { action = [] { return run_shapes(f); }; });

  CLI::App* fid = cmd->add_subcommand(
      "fid", "Frechet distance and KID between images drawn from a dataset's captions and its images, over a blur sweep");
  fid->add_option("-m,--model", f.model, "Model bundle (default: the shipped models/default)");
  fid->add_option("--real", f.real, "Images with captions: a folder, tar shards or a TSV (the first -n, in name order)")
      ->required();
  fid->add_option("-o,--output", f.out, "Folder: fid.json, fid.md, fid_blur.png, generated/ (kept; a rerun samples only "
                                        "what is missing)")->required();
  fid->add_option("-n,--count", f.fid.count, "Real images, and one generated per caption")->capture_default_str()
      ->check(CLI::Range(2, 10000000));
  fid->add_option("--inception", f.fid.inception,
                  "Inception-v3 weights as safetensors (`dalle convert` of torchvision's inception_v3_google-*.pth); "
                  "without it the reranker's image features give `fd_rerank`, which is not FID");
  fid->add_option("--blur", f.blur, "Gaussian blur radii (pixels) applied to both sets, comma-separated")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) {
            try {
              parse_radii(value);
            } catch (const Error& e) {
              return std::string(e.what());
            }
            return std::string();
          },
          "RADII"));
  fid->add_option("--candidates", f.fid.candidates, "Keep the reranker's best of this many per caption (1 = plain samples)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  fid->add_option("-b,--batch", f.fid.batch, "Captions sampled together")->capture_default_str()->check(CLI::Range(1, 1024));
  fid->add_option("-s,--seed", f.seed, "Random seed")->capture_default_str();
  fid->add_option("--kid-subsets", f.fid.kid_subsets, "KID: random subsets averaged")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  fid->add_option("--kid-subset-size", f.fid.kid_subset_size, "KID: features per subset")->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  add_sampler_options(fid, f.fid_sampler);
  add_weights_option(fid, f.weights);
  add_device_option(fid, f.device, "sampling");
  add_threads_option(fid, f.threads);
  add_progress_options(fid);
  fid->callback([&action] { action = [] { return run_fid(f); }; });
}

}  // namespace dalle::cli

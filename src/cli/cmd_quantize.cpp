// dalle quantize: a copy of a bundle whose prior stores its resblock weights in int8 (or bf16),
// so it loads a quarter (half) of the bytes and samples in that format by default.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "dalle/bundle/bundle.h"
#include "dalle/prior/quantized_weights.h"
#include "dalle/rerank/reranker.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle::cli {

namespace {

struct QuantizeFlags {
  std::string model;
  std::string out;
  std::string weights = "int8";
};

double megabytes(const std::string& path) { return std::filesystem::file_size(path) / 1e6; }

int run_quantize(const QuantizeFlags& f) {
  namespace fs = std::filesystem;
  if (fs::exists(f.out) && fs::equivalent(f.model, f.out))
    throw Error("quantize: -o " + f.out + " is the input bundle; write the quantized copy to another folder");
  const WeightFormat format = parse_weight_format(f.weights);
  // Loaded in fp32: quantizing an already-quantized bundle starts from its dequantized values.
  Bundle bundle = bundle_load(f.model, WeightFormat::fp32);
  make_dirs(f.out);
  for (const std::string& name : {std::string(kConfigFile), std::string(kVaeWeightsFile), bundle.config.tokenizer_file,
                                  std::string(kRerankWeightsFile)}) {
    const std::string from = path_join(f.model, name);
    if (!path_exists(from)) continue;  // a bundle without a reranker
    const std::vector<uint8_t> bytes = read_file_bytes(from);
    write_file_atomic(path_join(f.out, name), bytes.data(), bytes.size());
  }
  const std::string prior_in = path_join(f.model, kPriorWeightsFile), prior_out = path_join(f.out, kPriorWeightsFile);
  safetensors_save(prior_out, prior_weights_pack(bundle.prior, format));
  std::fprintf(stderr, "quantize: %s -> %s: %s %.1f MB -> %.1f MB (%s resblock weights; embeddings, norms, heads fp32)\n",
               f.model.c_str(), f.out.c_str(), kPriorWeightsFile, megabytes(prior_in), megabytes(prior_out),
               f.weights.c_str());
  return 0;
}

}  // namespace

void register_quantize(CLI::App& app, Action& action) {
  static QuantizeFlags f;
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Copy a model bundle with its prior's weights stored in int8 (or bf16) for fast, small inference");
  cmd->add_option("model", f.model, "Model bundle folder")->required();
  cmd->add_option("-o,--output", f.out, "Folder for the quantized bundle (created; its files are replaced)")->required();
  cmd->add_option("--weights", f.weights,
                  "int8: per-output-channel symmetric weight-only (a quarter of fp32); bf16: half")
      ->capture_default_str()->check(CLI::IsMember({"int8", "bf16"}));
  cmd->callback([&action] { action = [] { return run_quantize(f); }; });
}

}  // namespace dalle::cli

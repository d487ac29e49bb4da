// `dalle quantize` and loading quantized bundles: the int8 file is a third of the size, loads in
// int8 by default and samples exactly what the fp32 bundle samples with --weights int8; broken
// quantized files are errors naming the file.
#include <gtest/gtest.h>

#include <filesystem>

#include "dalle/util/torch_api.h"

#include "dalle/bundle/bundle.h"
#include "dalle/io/safetensors.h"
#include "dalle/sample/generate.h"
#include "dalle/train/checkpoint.h"
#include "dalle/util/error.h"
#include "test_util.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

const std::string kShipped = std::string(DALLE_SOURCE_DIR) + "/models/default";

torch::Tensor greedy_tokens(Bundle& bundle) {
  SamplerSettings greedy;
  greedy.top_k = 1;
  torch::Generator gen = step_generator(0, 0, 0);
  return sample_image_tokens(bundle_decoder(bundle), encode_caption(bundle, "a red circle"), greedy, gen);
}

}  // namespace

TEST(Quantize, Int8BundleIsSmallAndSamplesAsInt8OnLoad) {
  const fs::path dir = test::scratch_dir("quantize");
  const test::CliRun run = test::dalle_run("quantize " + kShipped + " -o " + (dir / "q8").string());
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("int8"), std::string::npos) << run.output;
  EXPECT_LT(fs::file_size(dir / "q8/prior.safetensors"), 0.4 * fs::file_size(kShipped + "/prior.safetensors"));
  for (const char* f : {"config.json", "vae.safetensors", "tokenizer.json", "rerank.safetensors"})
    EXPECT_TRUE(fs::exists(dir / "q8" / f)) << f;

  torch::InferenceMode guard;
  Bundle q8 = bundle_load((dir / "q8").string());
  EXPECT_EQ(q8.weights, WeightFormat::int8);
  Bundle shipped_int8 = bundle_load(kShipped, WeightFormat::int8);
  EXPECT_TRUE(torch::equal(greedy_tokens(q8), greedy_tokens(shipped_int8)));
  // Asked for fp32, the quantized bundle samples with its dequantized weights.
  EXPECT_EQ(bundle_load((dir / "q8").string(), WeightFormat::fp32).weights, WeightFormat::fp32);

  // The same file with a scale missing, or a scale of the wrong length: errors naming the file.
  const std::string prior = (dir / "q8/prior.safetensors").string();
  SafeTensors st = safetensors_load(prior);
  const std::string name = "blocks.0.attn.qkv.weight";
  SafeTensors no_scale = st;
  no_scale.tensors.erase(name + "_scale");
  SafeTensors short_scale = st;
  short_scale.tensors[name + "_scale"] = short_scale.tensors[name + "_scale"].narrow(0, 0, 5).clone();
  for (const auto& [broken, message] : {std::make_pair(no_scale, std::string("has no")),
                                        std::make_pair(short_scale, std::string("one scale per row"))}) {
    safetensors_save(prior, broken);
    try {
      bundle_load((dir / "q8").string());
      ADD_FAILURE() << "loaded a broken quantized bundle";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("prior.safetensors"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(Quantize, GenerateTakesEveryWeightFormatAndRejectsOthers) {
  const fs::path dir = test::scratch_dir("weights_flag");
  for (const char* w : {"fp32", "bf16", "int8"}) {
    const std::string out = (dir / (std::string(w) + ".png")).string();
    const test::CliRun run = test::dalle_run("generate -p 'a red circle' -n 2 -k 1 -s 3 -t 1 --weights " +
                                             std::string(w) + " -o " + out);
    ASSERT_EQ(run.code, 0) << run.output;
    EXPECT_NE(run.output.find(std::string(w) + " weights"), std::string::npos) << run.output;
    EXPECT_TRUE(fs::exists(out));
  }
  const test::CliRun bad = test::dalle_run("generate -p x --weights int4 -o " + (dir / "x.png").string());
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("--weights"), std::string::npos) << bad.output;
  const test::CliRun same = test::dalle_run("quantize " + kShipped + " -o " + kShipped);
  EXPECT_NE(same.code, 0);
  EXPECT_NE(same.output.find("is the input bundle"), std::string::npos) << same.output;
}

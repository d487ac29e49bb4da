// `dalle vae import-openai` against the reference: a small dVAE in the module layout of OpenAI's
// released code, pickled and run by Debian's python3-torch (tests/data/make_openai_dvae_fixture.py,
// generated here when that Python is present: the pickles are megabytes, too big to commit),
// must give the same tokens and reconstructions after import.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dalle/bundle/bundle.h"
#include "dalle/io/torch_checkpoint.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/vae/pixels.h"
#include "test_util.h"

namespace dalle {
namespace {

namespace fs = std::filesystem;

// The fixture folder (generated: the pickles are megabytes); "" without python3-torch.
const std::string& reference_fixture() { return test::python_reference("torch", "make_openai_dvae_fixture.py"); }

#define REQUIRE_REFERENCE()                                                                          \
  if (reference_fixture().empty()) GTEST_SKIP() << "needs Debian's python3-torch (scripts/install-deps.sh --test)"

std::vector<int64_t> shape_of(const nlohmann::json& meta, const char* key) { return meta.at(key).get<std::vector<int64_t>>(); }

TEST(OpenaiImport, TokensAndReconstructionsMatchTheReferenceCode) {
  REQUIRE_REFERENCE();
  const std::string fx = reference_fixture();
  const nlohmann::json meta = nlohmann::json::parse(read_file_text(fx + "/meta.json"));
  const std::string run_dir = (test::scratch_dir("openai_import") / "run").string();
  const test::CliRun run = test::dalle_run("vae import-openai --encoder " + fx + "/encoder.pkl --decoder " + fx +
                                           "/decoder.pkl -o " + run_dir + " --image-size " +
                                           std::to_string(meta.at("image_size").get<int>()));
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("n_hid 64"), std::string::npos) << run.output;

  ModelConfig config;
  Dvae vae = vae_load(run_dir, &config);
  EXPECT_EQ(config.vae.n_hid, meta.at("n_hid").get<int>());
  EXPECT_EQ(config.vae.vocab, meta.at("vocab").get<int>());
  EXPECT_EQ(config.vae.n_init, meta.at("n_init").get<int>());
  EXPECT_EQ(config.vae.blocks_per_group, meta.at("blocks_per_group").get<int>());

  const torch::Tensor images = test::read_raw(fx + "/images.u8", shape_of(meta, "images"), torch::kUInt8);
  const torch::Tensor ref_logits = test::read_raw(fx + "/logits.f32", shape_of(meta, "logits"), torch::kFloat32);
  const torch::Tensor ref_tokens = test::read_raw(fx + "/tokens.i64", shape_of(meta, "tokens"), torch::kInt64);
  const torch::Tensor ref_recon = test::read_raw(fx + "/recon.f32", shape_of(meta, "recon"), torch::kFloat32);
  torch::InferenceMode inference;
  const torch::Tensor x = map_pixels(images.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0), config.vae.eps);
  const torch::Tensor logits = vae->encoder(x);
  // Same fp32 arithmetic up to summation order (our convolutions run channels-last).
  const double logit_err = (logits - ref_logits).abs().max().item<double>();
  EXPECT_LT(logit_err, 1e-4 * std::max(1.0, ref_logits.abs().max().item<double>())) << "logit error " << logit_err;
  EXPECT_TRUE(torch::equal(vae->encode_images(images), ref_tokens));
  const double recon_err = (vae->decode_tokens(ref_tokens) - ref_recon).abs().max().item<double>();
  EXPECT_LT(recon_err, 1e-5) << "reconstruction error " << recon_err;
  std::printf("max |logit - reference| %.3g (logits up to %.3g); max |pixel - reference| %.3g\n", logit_err,
              ref_logits.abs().max().item<double>(), recon_err);

  // The run folder is a dVAE the rest of the pipeline takes.
  EXPECT_TRUE(path_exists(run_dir + "/vae.safetensors"));
  const test::CliRun again = test::dalle_run("vae import-openai --encoder " + fx + "/encoder.pkl --decoder " + fx +
                                             "/decoder.pkl -o " + run_dir);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
}

TEST(OpenaiImport, LegacyFormatAndFp16WeightsLoadExactly) {
  REQUIRE_REFERENCE();
  const std::string fx = reference_fixture();
  const TorchCheckpoint zip = torch_checkpoint_load(fx + "/encoder.pkl");
  const TorchCheckpoint legacy = torch_checkpoint_load(fx + "/encoder_legacy.pkl");
  EXPECT_EQ(zip.root_class, "dall_e.encoder.Encoder");
  EXPECT_EQ(legacy.format, "legacy");
  ASSERT_EQ(zip.tensors.size(), legacy.tensors.size());
  for (size_t i = 0; i < zip.tensors.size(); ++i) {
    EXPECT_EQ(zip.tensors[i].first, legacy.tensors[i].first);
    EXPECT_TRUE(torch::equal(zip.tensors[i].second, legacy.tensors[i].second)) << zip.tensors[i].first;
  }
  EXPECT_EQ(zip.tensors.front().first, "blocks.input.w");

  const std::string run_dir = (test::scratch_dir("openai_fp16") / "run").string();
  const test::CliRun run = test::dalle_run("vae import-openai --encoder " + fx + "/encoder_legacy.pkl --decoder " + fx +
                                           "/decoder_fp16.pkl -o " + run_dir + " --image-size 64");
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("float16, stored as float32 (every value exactly"), std::string::npos) << run.output;
  Dvae vae = vae_load(run_dir);
  const TorchCheckpoint fp16 = torch_checkpoint_load(fx + "/decoder_fp16.pkl");
  auto params = vae->decoder->named_parameters();
  for (const auto& [name, tensor] : fp16.tensors) {
    ASSERT_EQ(tensor.scalar_type(), torch::kFloat16) << name;
    const torch::Tensor ours = params[name];
    EXPECT_TRUE(torch::equal(ours, tensor.to(torch::kFloat32))) << name;     // widened exactly
    EXPECT_TRUE(torch::equal(ours.to(torch::kFloat16), tensor)) << name;  // and back, bit for bit
  }
}

TEST(OpenaiImport, MismatchedFilesAreRefusedByName) {
  REQUIRE_REFERENCE();
  const std::string fx = reference_fixture();
  const std::string out = (test::scratch_dir("openai_bad") / "run").string();
  const test::CliRun swapped = test::dalle_run("vae import-openai --encoder " + fx + "/decoder.pkl --decoder " + fx +
                                               "/encoder.pkl -o " + out);
  EXPECT_EQ(swapped.code, 1);
  EXPECT_NE(swapped.output.find("decoder.pkl: holds a dall_e.decoder.Decoder, expected OpenAI's Encoder"), std::string::npos)
      << swapped.output;
  const test::CliRun foreign = test::dalle_run("vae import-openai --encoder " + std::string(DALLE_TEST_DATA_DIR) +
                                               "/checkpoints/module_zip.pt --decoder " + fx + "/decoder.pkl -o " + out);
  EXPECT_EQ(foreign.code, 1);
  EXPECT_NE(foreign.output.find("module_zip.pt: holds a __main__.Net"), std::string::npos) << foreign.output;
  EXPECT_FALSE(path_exists(out + "/config.json"));
}

}  // namespace
}  // namespace dalle

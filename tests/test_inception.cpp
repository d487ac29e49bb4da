// The Inception-v3 port against its twin, torchvision's inception_v3 run by Debian's
// python3-torchvision on the same (seeded, made-up) weights: tests/data/make_inception_reference.py
// writes a torch.save'd state dict (100 MB, so it is generated here, never committed), 4 images
// and their pool3 features; the real `dalle convert` turns the .pth into safetensors, and our
// inception_features must give the same features. Loading errors are tested without Python.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "dalle/eval/inception.h"
#include "dalle/io/safetensors.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/torch_api.h"
#include "test_util.h"

namespace dalle {
namespace {

namespace fs = std::filesystem;

// `variant`: "torchvision" or "fid" (the script's second argument); "" without python3-torchvision.
const std::string& inception_reference(const std::string& variant = "torchvision") {
  return test::python_reference("torchvision", "make_inception_reference.py", variant);
}

// Our features against the twin's for one variant; returns the twin's features.
torch::Tensor check_twin(const std::string& variant, InceptionVariant expected_variant) {
  const std::string ref = inception_reference(variant);
  const nlohmann::json meta = nlohmann::json::parse(read_file_text(ref + "/meta.json"));
  const std::string weights = (test::scratch_dir("inception") / "inception.safetensors").string();
  const test::CliRun run = test::dalle_run("convert " + ref + "/inception.pth -o " + weights);
  if (run.code != 0) {
    ADD_FAILURE() << run.output;
    return {};
  }

  InceptionV3 net = inception_v3_load(weights);
  EXPECT_EQ(net->variant(), expected_variant);
  const torch::Tensor images = test::read_raw(ref + "/images.u8", meta.at("images").get<std::vector<int64_t>>(), torch::kUInt8);
  const torch::Tensor expected =
      test::read_raw(ref + "/features.f32", meta.at("features").get<std::vector<int64_t>>(), torch::kFloat32);
  // Batches of 3 and 1: batching must not change any image's features.
  const torch::Tensor features = inception_features(net, images, /*batch=*/3);
  if (features.sizes() != expected.sizes()) {
    ADD_FAILURE() << "feature shapes differ";
    return {};
  }
  const double scale = expected.abs().max().item<double>();
  const double err = (features - expected).abs().max().item<double>();
  // The same fp32 operations in the same order; only convolution algorithms may sum differently.
  EXPECT_LT(err, 1e-4 * std::max(1.0, scale)) << "max |ours - torchvision| " << err << " (features up to " << scale << ")";
  // The images differ, so must their features: a test of a degenerate network would pass too easily.
  EXPECT_GT((expected[0] - expected[1]).abs().max().item<double>(), 100 * err + 1e-3);
  std::printf("pool3 features (%s): max |ours - twin| %.3g (features up to %.3g)\n", variant.c_str(), err, scale);
  return expected;
}

TEST(Inception, FeaturesMatchTorchvisionOnTheSameWeights) {
  if (inception_reference().empty()) GTEST_SKIP() << "needs Debian's python3-torchvision (/usr/bin/python3 -c 'import torchvision')";
  check_twin("torchvision", InceptionVariant::torchvision);
}

TEST(Inception, TheFidNetworkIsRecognisedByItsWeightsAndMatchesItsTwin) {
  if (inception_reference("fid").empty()) GTEST_SKIP() << "needs Debian's python3-torchvision";
  const torch::Tensor fid = check_twin("fid", InceptionVariant::fid);
  if (!fid.defined()) return;
  // Its pooling matters: torchvision's network on the same weights reads the images otherwise.
  const torch::Tensor plain = test::read_raw(inception_reference("fid") + "/features_torchvision.f32", fid.sizes().vec(), torch::kFloat32);
  EXPECT_GT((fid - plain).abs().max().item<double>(), 1e-2);
}

// The file our tests write: every tensor of a fresh network, plus what torchvision's checkpoint
// also holds.
SafeTensors network_tensors(InceptionV3& net) {
  SafeTensors st;
  for (const auto& item : net->named_parameters(true)) st.tensors[item.key()] = item.value().detach().clone();
  for (const auto& item : net->named_buffers(true)) st.tensors[item.key()] = item.value().clone();
  st.tensors["fc.weight"] = torch::zeros({1000, 2048});
  st.tensors["AuxLogits.conv0.conv.weight"] = torch::zeros({128, 768, 1, 1});
  st.tensors["Mixed_5b.branch1x1.bn.num_batches_tracked"] = torch::zeros({}, torch::kInt64);
  return st;
}

TEST(Inception, LoadsTorchvisionNamesAndConvertsToFp32) {
  InceptionV3 fresh;
  SafeTensors st = network_tensors(fresh);
  // 94 BasicConv2d layers, each a conv weight and 4 BatchNorm tensors.
  EXPECT_EQ(fresh->named_parameters(true).size() + fresh->named_buffers(true).size(), 94u * 5);
  EXPECT_TRUE(fresh->named_parameters(true).contains("Mixed_7c.branch3x3dbl_3b.conv.weight"));
  EXPECT_TRUE(fresh->named_buffers(true).contains("Conv2d_1a_3x3.bn.running_var"));
  st.tensors["Conv2d_1a_3x3.conv.weight"] = torch::full({32, 3, 3, 3}, 0.5, torch::kBFloat16);
  const std::string path = (test::scratch_dir("inception_load") / "w.safetensors").string();
  safetensors_save(path, st);
  InceptionV3 net = inception_v3_load(path);
  EXPECT_FALSE(net->is_training());
  const torch::Tensor w = net->named_parameters(true)["Conv2d_1a_3x3.conv.weight"];
  EXPECT_EQ(w.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(w, torch::full({32, 3, 3, 3}, 0.5)));
}

TEST(Inception, RefusesWrongFilesNamingEveryTensor) {
  InceptionV3 fresh;
  SafeTensors st = network_tensors(fresh);
  st.tensors.erase("Mixed_5c.branch_pool.bn.running_var");
  st.tensors["Mixed_6b.branch7x7_2.conv.weight"] = torch::zeros({128, 128, 7, 1});
  st.tensors["Conv2d_2a_3x3.bn.bias"] = torch::zeros({32}, torch::kInt32);
  st.tensors["transformer.layer0.weight"] = torch::zeros({4});
  const std::string path = (test::scratch_dir("inception_bad") / "bad.safetensors").string();
  safetensors_save(path, st);
  try {
    inception_v3_load(path);
    FAIL() << "loaded a wrong file";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("4 problem(s)"), std::string::npos) << message;
    EXPECT_NE(message.find("missing tensor 'Mixed_5c.branch_pool.bn.running_var'"), std::string::npos) << message;
    EXPECT_NE(message.find("'Mixed_6b.branch7x7_2.conv.weight' has shape [128, 128, 7, 1], expected [128, 128, 1, 7]"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("'Conv2d_2a_3x3.bn.bias' has dtype I32"), std::string::npos) << message;
    EXPECT_NE(message.find("unexpected tensor 'transformer.layer0.weight'"), std::string::npos) << message;
  }
}

TEST(Inception, FeaturesHaveOneRowPerImageOfAnySize) {
  InceptionV3 net;  // placeholder weights: shapes and finiteness only
  net->eval();
  const torch::Tensor images = torch::randint(0, 256, {2, 40, 75, 3}, torch::kUInt8);
  const torch::Tensor features = inception_features(net, images);
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{2, 2048}));
  EXPECT_EQ(features.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(features).all().item<bool>());
  EXPECT_THROW(inception_features(net, images.to(torch::kFloat32)), Error);
  EXPECT_THROW(inception_features(net, images.permute({0, 3, 1, 2})), Error);
}

// A perf mode, run on request (--gtest_also_run_disabled_tests): seconds per image on this
// machine's cores, placeholder weights (the arithmetic does not depend on their values).
TEST(Inception, DISABLED_ForwardTimePerImage) {
  const int threads = torch::get_num_threads();
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  InceptionV3 net;
  net->eval();
  const torch::Tensor images = torch::randint(0, 256, {16, 256, 256, 3}, torch::kUInt8);
  inception_features(net, images.slice(0, 0, 2));  // warm-up: oneDNN picks its kernels
  const auto start = std::chrono::steady_clock::now();
  inception_features(net, images, 16);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Inception-v3 pool3 features: %.1f ms per 256x256 image (batch 16, %d threads)\n",
              1000 * seconds / images.size(0), torch::get_num_threads());
  torch::set_num_threads(threads);
}

}  // namespace
}  // namespace dalle

#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <filesystem>

#include "dalle/io/safetensors.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_paths.h"
#include "test_util.h"

using namespace dalle;

namespace {

std::string temp_path(const std::string& name) {
  return (test::scratch_dir("safetensors") / name).string();
}

SafeTensors sample_file() {
  SafeTensors st;
  st.tensors["f32"] = torch::arange(6, torch::kFloat32).view({2, 3});
  st.tensors["f16"] = torch::tensor({1.5, -2.0}, torch::kFloat16);
  st.tensors["bf16"] = torch::tensor({0.25, 3.0, -1.0}, torch::kBFloat16);
  st.tensors["i64"] = torch::tensor({int64_t(1) << 40, int64_t(-7)}, torch::kInt64);
  st.tensors["i32"] = torch::tensor({-3, 4}, torch::kInt32);
  st.tensors["u8"] = torch::tensor({0, 255}, torch::kUInt8);
  st.tensors["u16"] = torch::tensor({0, 1, 65535}, torch::kInt32);
  st.dtypes["u16"] = "U16";
  st.tensors["scalar"] = torch::tensor(2.5f);
  st.metadata["purpose"] = "test";
  return st;
}

}  // namespace

TEST(Safetensors, RoundTripKeepsEveryDtypeShapeAndValue) {
  const SafeTensors st = sample_file();
  const std::string path = temp_path("roundtrip.safetensors");
  safetensors_save(path, st);
  const SafeTensors back = safetensors_load(path);
  ASSERT_EQ(back.tensors.size(), st.tensors.size());
  for (const auto& [name, t] : st.tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    const torch::Tensor& b = back.tensors.at(name);
    EXPECT_EQ(b.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(b.to(torch::kFloat64), t.to(torch::kFloat64))) << name;
  }
  EXPECT_EQ(back.dtypes.at("u16"), "U16");
  EXPECT_EQ(back.dtypes.at("bf16"), "BF16");
  EXPECT_EQ(back.metadata.at("purpose"), "test");
  std::remove(path.c_str());
}

TEST(Safetensors, ReadsAFileWrittenByNumpy) {
  // tests/data/reference.safetensors is written by tests/data/make_reference_safetensors.py
  // with numpy alone, independently of our writer.
  const SafeTensors st = safetensors_load(std::string(DALLE_TEST_DATA_DIR) + "/reference.safetensors");
  EXPECT_EQ(st.metadata.at("writer"), "numpy");
  EXPECT_TRUE(torch::equal(st.tensors.at("f32"), torch::arange(12, torch::kFloat32).view({3, 4}) / 4));
  EXPECT_TRUE(torch::equal(st.tensors.at("f16").to(torch::kFloat32), torch::tensor({0.5f, -1.25f, 1024.0f})));
  EXPECT_TRUE(torch::equal(st.tensors.at("bf16").to(torch::kFloat32), torch::tensor({1.0f, -2.5f, 0.15625f})));
  EXPECT_TRUE(torch::equal(st.tensors.at("i64"), torch::tensor({int64_t(-1), int64_t(1) << 50})));
  EXPECT_TRUE(torch::equal(st.tensors.at("i32"), torch::tensor({7, -8, 9}, torch::kInt32).view({3, 1})));
  EXPECT_TRUE(torch::equal(st.tensors.at("u16"), torch::tensor({0, 40000, 65535}, torch::kInt32)));
  EXPECT_TRUE(torch::equal(st.tensors.at("u8"), torch::tensor({1, 2, 250}, torch::kUInt8)));
  EXPECT_EQ(st.dtypes.at("u16"), "U16");
}

TEST(Safetensors, OurBytesMatchNumpysForTheSameTensors) {
  // Byte-level agreement of the data section with the independent writer.
  const std::string ref_path = std::string(DALLE_TEST_DATA_DIR) + "/reference.safetensors";
  const SafeTensors ref = safetensors_load(ref_path);
  SafeTensors ours;
  ours.tensors = ref.tensors;
  ours.dtypes = ref.dtypes;
  ours.metadata = ref.metadata;
  const std::vector<uint8_t> bytes = safetensors_serialize(ours);
  const SafeTensors again = safetensors_parse(bytes.data(), bytes.size(), "memory");
  for (const auto& [name, t] : ref.tensors) EXPECT_TRUE(torch::equal(again.tensors.at(name), t)) << name;
}

TEST(Safetensors, TruncatedFileIsAClearError) {
  std::vector<uint8_t> bytes = safetensors_serialize(sample_file());
  for (size_t cut : {size_t(0), size_t(4), size_t(12), bytes.size() / 2, bytes.size() - 1}) {
    try {
      safetensors_parse(bytes.data(), cut, "model.safetensors");
      FAIL() << "no error for a file cut at " << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    }
  }
}

TEST(Safetensors, CorruptHeaderIsAClearError) {
  std::vector<uint8_t> bytes = safetensors_serialize(sample_file());
  std::vector<uint8_t> bad = bytes;
  bad[10] = '!';  // breaks the JSON
  EXPECT_THROW(safetensors_parse(bad.data(), bad.size(), "x"), Error);
  bad = bytes;
  bad[7] = 0x7f;  // absurd header length
  EXPECT_THROW(safetensors_parse(bad.data(), bad.size(), "x"), Error);
  // Offsets that disagree with the shape.
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})";
  std::vector<uint8_t> f(8 + header.size() + 16, 0);
  f[0] = static_cast<uint8_t>(header.size());
  std::copy(header.begin(), header.end(), f.begin() + 8);
  try {
    safetensors_parse(f.data(), f.size(), "y.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'a'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, U16OutOfRangeIsRefused) {
  SafeTensors st;
  st.tensors["t"] = torch::tensor({70000}, torch::kInt32);
  st.dtypes["t"] = "U16";
  EXPECT_THROW(safetensors_serialize(st), Error);
}

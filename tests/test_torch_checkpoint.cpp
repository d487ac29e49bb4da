// Reading PyTorch checkpoints without running them: both torch.save formats, every dtype, module
// attribute paths, refusal of pickles that call code, truncated files, and `dalle convert`.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "dalle/io/safetensors.h"
#include "dalle/io/torch_checkpoint.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_util.h"

namespace dalle {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return std::string(DALLE_TEST_DATA_DIR) + "/checkpoints/" + name; }

// The values tests/data/make_checkpoint_fixtures.py gives every tensor.
torch::Tensor pattern(std::vector<int64_t> shape, torch::ScalarType dtype) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  const torch::Tensor k = (torch::arange(n, torch::kLong) * 37) % 23;
  torch::Tensor v;
  if (dtype == torch::kBool)
    v = (k % 2) == 1;
  else if (dtype == torch::kUInt8)
    v = k.to(torch::kUInt8);
  else if (c10::isFloatingType(dtype))
    v = ((k - 11).to(torch::kFloat64) / 4).to(dtype);
  else
    v = (k - 11).to(dtype);
  return v.reshape(shape);
}

const std::vector<std::pair<std::string, torch::ScalarType>> kDtypes = {
    {"float64", torch::kFloat64}, {"float32", torch::kFloat32}, {"float16", torch::kFloat16},
    {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64}, {"int32", torch::kInt32},
    {"int16", torch::kInt16},     {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
    {"bool", torch::kBool}};

std::map<std::string, torch::Tensor> as_map(const TorchCheckpoint& c) {
  return {c.tensors.begin(), c.tensors.end()};
}

void expect_same(const torch::Tensor& got, const torch::Tensor& want, const std::string& name) {
  ASSERT_TRUE(got.defined()) << name;
  EXPECT_EQ(got.scalar_type(), want.scalar_type()) << name;
  ASSERT_EQ(got.sizes(), want.sizes()) << name;
  EXPECT_TRUE(torch::equal(got, want)) << name;
}

TEST(TorchCheckpoint, EveryDtypeAndSharedViewsInBothFormats) {
  for (const char* file : {"state_dict_zip.pt", "state_dict_legacy.pt"}) {
    SCOPED_TRACE(file);
    const TorchCheckpoint c = torch_checkpoint_load(fixture(file));
    EXPECT_EQ(c.format, std::string(file).find("zip") != std::string::npos ? "zip" : "legacy");
    EXPECT_EQ(c.root_class, "");
    auto t = as_map(c);
    ASSERT_EQ(t.size(), kDtypes.size() + 5);
    for (size_t i = 0; i < kDtypes.size(); ++i)
      expect_same(t["model." + kDtypes[i].first], pattern({2, 3 + static_cast<int64_t>(i)}, kDtypes[i].second),
                  kDtypes[i].first);
    const torch::Tensor base = pattern({4, 6}, torch::kFloat32);
    expect_same(t["shared.base"], base, "base");
    expect_same(t["shared.row"], base[2], "row (a view at an offset)");
    expect_same(t["shared.t"], base.t(), "t (a transposed view)");
    expect_same(t["list.0"], pattern({2}, torch::kFloat32), "list.0");
    expect_same(t["list.1"], pattern({3}, torch::kInt64), "list.1");
    EXPECT_EQ(c.other_values, 3);  // epoch and the two names
    EXPECT_EQ(c.tensors.front().first, "model.float64");  // the pickle's order
  }
}

TEST(TorchCheckpoint, PickledModulesAreNamedByAttributePath) {
  const std::vector<std::string> names = {"blocks.group_1.block_1.scale", "blocks.group_1.block_1.res_path.conv_1.weight",
                                          "blocks.group_1.block_1.res_path.conv_1.bias", "blocks.output.weight",
                                          "blocks.output.bias", "heads.0.weight"};
  for (const char* file : {"module_zip.pt", "module_legacy.pt"}) {
    SCOPED_TRACE(file);
    const TorchCheckpoint c = torch_checkpoint_load(fixture(file));
    EXPECT_EQ(c.root_class, "__main__.Net");
    ASSERT_EQ(c.tensors.size(), names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(c.tensors[i].first, names[i]);
      const torch::Tensor& t = c.tensors[i].second;
      expect_same(t, pattern(t.sizes().vec(), torch::kFloat32), names[i]);
    }
  }
}

TEST(TorchCheckpoint, ReadsTheArchivesLibtorchWrites) {
  c10::Dict<std::string, at::Tensor> dict;
  for (size_t i = 0; i < kDtypes.size(); ++i)
    dict.insert(kDtypes[i].first, pattern({3, 2 + static_cast<int64_t>(i)}, kDtypes[i].second));
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  const fs::path path = test::scratch_dir("ckpt_libtorch") / "dict.pt";
  write_file_atomic(path.string(), bytes.data(), bytes.size());
  const TorchCheckpoint c = torch_checkpoint_load(path.string());
  EXPECT_EQ(c.format, "zip");
  auto t = as_map(c);
  ASSERT_EQ(t.size(), kDtypes.size());
  for (size_t i = 0; i < kDtypes.size(); ++i)
    expect_same(t[kDtypes[i].first], pattern({3, 2 + static_cast<int64_t>(i)}, kDtypes[i].second), kDtypes[i].first);
}

TEST(TorchCheckpoint, ConvertKeepsEveryDtypeAndListsTheTensors) {
  const fs::path dir = test::scratch_dir("ckpt_convert");
  const std::string out = (dir / "weights.safetensors").string();
  const test::CliRun run = test::dalle_run("convert " + fixture("state_dict_legacy.pt") + " -o " + out);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("15 tensors"), std::string::npos) << run.output;
  const SafeTensors st = safetensors_load(out);
  ASSERT_EQ(st.tensors.size(), kDtypes.size() + 5);
  for (size_t i = 0; i < kDtypes.size(); ++i)
    expect_same(st.tensors.at("model." + kDtypes[i].first), pattern({2, 3 + static_cast<int64_t>(i)}, kDtypes[i].second),
                kDtypes[i].first);
  expect_same(st.tensors.at("shared.t"), pattern({4, 6}, torch::kFloat32).t(), "shared.t");
  EXPECT_EQ(st.metadata.at("format"), "pytorch-legacy");

  const test::CliRun list = test::dalle_run("convert --list " + fixture("module_zip.pt"));
  ASSERT_EQ(list.code, 0) << list.output;
  EXPECT_NE(list.output.find("blocks.group_1.block_1.res_path.conv_1.weight"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("F32   [3, 2, 1, 1]"), std::string::npos) << list.output;
  EXPECT_FALSE(fs::exists(dir / "module_zip.safetensors"));
}

// A pickle that calls `function` with one string argument: what an attacker's checkpoint does.
std::string calling_pickle(const std::string& module, const std::string& function, const std::string& arg) {
  std::string p = "\x80\x02";
  p += "c" + module + "\n" + function + "\n";
  p += "X";
  const uint32_t n = static_cast<uint32_t>(arg.size());
  p.append(reinterpret_cast<const char*>(&n), 4);
  p += arg;
  p += "\x85R.";  // TUPLE1, REDUCE, STOP
  return p;
}

void write_zip(const std::string& path, const std::string& member, const std::string& bytes) {
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, member.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_write_header(a, e);
  archive_write_data(a, bytes.data(), bytes.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
}

std::string load_error(const std::string& path) {
  try {
    torch_checkpoint_load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TorchCheckpoint, RefusesPicklesThatCallCodeWithoutRunningThem) {
  const fs::path dir = test::scratch_dir("ckpt_malicious");
  const fs::path marker = dir / "pwned";
  const std::string shell = "touch " + marker.string();
  const std::vector<std::array<std::string, 3>> calls = {
      {"os", "system", shell}, {"posix", "system", shell}, {"__builtin__", "eval", "__import__('os').system('" + shell + "')"},
      {"builtins", "exec", "open('" + marker.string() + "', 'w')"}, {"subprocess", "check_output", shell}};
  for (const auto& [module, function, arg] : calls) {
    const std::string pickle = calling_pickle(module, function, arg);
    const std::string stream = (dir / (module + "_" + function + ".pt")).string();
    write_file_atomic(stream, pickle);
    const std::string zip = (dir / (module + "_" + function + "_zip.pt")).string();
    write_zip(zip, "archive/data.pkl", pickle);
    const std::string shown = (module == "__builtin__" ? "builtins" : module) + "." + function;
    for (const std::string& path : {stream, zip}) {
      SCOPED_TRACE(path);
      const std::string error = load_error(path);
      EXPECT_NE(error.find("refusing to call " + shown), std::string::npos) << error;
      EXPECT_NE(error.find(path), std::string::npos) << error;
    }
  }
  EXPECT_FALSE(fs::exists(marker));
  const test::CliRun run = test::dalle_run("convert " + (dir / "os_system.pt").string() + " -o " + (dir / "x.safetensors").string());
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.output.find("refusing to call os.system"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
  EXPECT_FALSE(fs::exists(marker));
}

TEST(TorchCheckpoint, TruncatedOrForeignFilesGiveOneClearError) {
  const fs::path dir = test::scratch_dir("ckpt_truncated");
  for (const char* file : {"state_dict_zip.pt", "state_dict_legacy.pt", "module_legacy.pt"}) {
    const std::vector<uint8_t> bytes = read_file_bytes(fixture(file));
    for (size_t keep : {size_t{1}, size_t{10}, size_t{100}, bytes.size() / 2, bytes.size() - 30, bytes.size() - 1}) {
      const std::string path = (dir / (std::string(file) + "." + std::to_string(keep))).string();
      write_file_atomic(path, bytes.data(), keep);
      SCOPED_TRACE(path);
      try {
        torch_checkpoint_load(path);
        ADD_FAILURE() << "a truncated file loaded";
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not a dalle::Error: " << e.what();
      }
    }
  }
  const std::string text = (dir / "notes.pt").string();
  write_file_atomic(text, std::string("hello, world\n"));
  EXPECT_NE(load_error(text).find("not a PyTorch checkpoint"), std::string::npos);
  const std::string empty = (dir / "empty.pt").string();
  write_file_atomic(empty, std::string());
  EXPECT_NE(load_error(empty).find("empty file"), std::string::npos);
  EXPECT_NE(load_error((dir / "missing.pt").string()).find("no such file"), std::string::npos);
}

}  // namespace
}  // namespace dalle

// Helpers shared by the tests.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <filesystem>
#include <string>
#include <vector>

#include "dalle/bundle/config.h"
#include "dalle/util/fs.h"
#include "test_paths.h"

namespace dalle::test {

// The scratch folders the running test made; tests/main.cpp deletes them when it passes and
// keeps them for inspection when it fails.
inline std::vector<std::filesystem::path>& scratch_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}

// A fresh, empty folder for one test in one process: concurrent test runs (two checkouts, or
// ctest -j) never share scratch space.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("dalle_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  scratch_dirs().push_back(p);
  return p;
}

// The devices device-agnostic tests run on: the CPU, and the first GPU when libtorch has CUDA
// and one is visible (scripts/gpu-check.sh runs them there).
inline std::vector<c10::Device> devices() {
  std::vector<c10::Device> out{c10::Device(c10::kCPU)};
  if (torch::cuda::is_available()) out.emplace_back(c10::kCUDA, 0);
  return out;
}

// A prior small enough to run in milliseconds: d 32, 4 heads, 6 text positions of 20 ids.
inline PriorConfig toy_prior(int layers = 5) {
  PriorConfig c;
  c.layers = layers;
  c.d_model = 32;
  c.heads = 4;
  c.text_len = 6;
  c.text_vocab = 20;
  c.conv_kernel = 3;
  return c;
}

struct CliRun {
  int code;            // exit status, -1 if the process did not exit normally
  std::string output;  // stdout + stderr
};

// Runs a command line through the shell (so redirections work); stdout and stderr together.
inline CliRun dalle_run_program(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A folder that a reference script in tests/data fills with Debian's python3 (/usr/bin/python3:
// python3-torch and friends), once per test process and per `args`, removed when the process
// exits; "" when that Python cannot import `module` (the test then skips).
inline const std::string& python_reference(const std::string& module, const std::string& script,
                                           const std::string& args = "") {
  struct Folder {
    std::string path;
    ~Folder() {
      std::error_code ignored;
      if (!path.empty()) std::filesystem::remove_all(path, ignored);
    }
  };
  static std::map<std::string, Folder> made;
  const std::string key = script + " " + args;
  if (made.count(key)) return made[key].path;
  Folder& folder = made[key];
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'import " + module + "' >/dev/null 2>&1").c_str()) != 0) return folder.path;
  std::string tag = script.substr(0, script.find('.')) + (args.empty() ? "" : "_" + args);
  for (char& c : tag)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("dalle_test_" + std::to_string(::getpid()) + "_" + tag);
  const std::string cmd = python + " " + DALLE_TEST_DATA_DIR + "/" + script + " " + out.string() + " " + args +
                          " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference script failed: " + cmd);
  folder.path = out.string();
  return folder.path;
}

// A raw little-endian array written by a reference script.
inline torch::Tensor read_raw(const std::string& path, const std::vector<int64_t>& shape, torch::ScalarType dtype) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.nbytes())) << path;
  std::memcpy(t.data_ptr(), bytes.data(), std::min<size_t>(bytes.size(), t.nbytes()));
  return t;
}

// Runs the real `dalle` binary with `args`.
inline CliRun dalle_run(const std::string& args) { return dalle_run_program(std::string(DALLE_BINARY) + " " + args); }

}  // namespace dalle::test

// Helpers shared by the tests.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "dalle/bundle/config.h"
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

// Runs the real `dalle` binary with `args`.
inline CliRun dalle_run(const std::string& args) { return dalle_run_program(std::string(DALLE_BINARY) + " " + args); }

}  // namespace dalle::test

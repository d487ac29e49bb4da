// Helpers shared by the tests.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace dalle::test {

// A fresh, empty folder for one test in one process: concurrent test runs (two checkouts, or
// ctest -j) never share scratch space.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("dalle_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace dalle::test

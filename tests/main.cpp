// The test runner: GoogleTest's usual main, plus cleanup of each passing test's scratch folders
// (a full run writes hundreds of MB of datasets, runs and bundles under the temp folder).
#include <gtest/gtest.h>

#include <system_error>

#include "dalle/util/allocator.h"
#include "test_util.h"

namespace {

class ScratchCleanup : public testing::EmptyTestEventListener {
  void OnTestEnd(const testing::TestInfo& info) override {
    auto& dirs = dalle::test::scratch_dirs();
    if (info.result()->Passed()) {
      std::error_code ignored;
      for (const auto& dir : dirs) std::filesystem::remove_all(dir, ignored);
    }
    dirs.clear();
  }
};

}  // namespace

int main(int argc, char** argv) {
  // As every `dalle` command does: without it, tensors above glibc's mmap threshold page-fault
  // afresh on every allocation (the judge test took 315 s instead of about 60).
  dalle::reuse_freed_memory(true);
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new ScratchCleanup);
  return RUN_ALL_TESTS();
}

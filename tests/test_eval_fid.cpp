// `dalle eval fid` end to end on the shipped model against shapes renders: the blur sweep, the
// fallback features named fd_rerank (never FID), kept samples on a rerun, and clear errors.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "dalle/util/fs.h"
#include "test_util.h"

namespace dalle {
namespace {

using json = nlohmann::json;

TEST(EvalFid, BlurSweepWithRerankFeaturesResumesAndNamesItsMetric) {
  const std::filesystem::path dir = test::scratch_dir("eval_fid");
  const std::string real = (dir / "real").string(), out = (dir / "fid").string();
  ASSERT_EQ(test::dalle_run("data shapes -n 48 --size 64 -o " + real).code, 0);
  const std::string cmd = "eval fid -m " + std::string(DALLE_SOURCE_DIR) + "/models/default --real " + real +
                          " -n 40 --kid-subset-size 20 --kid-subsets 10 -o " + out + " -t 1";
  const test::CliRun run = test::dalle_run(cmd + " --blur 0,2");
  ASSERT_EQ(run.code, 0) << run.output;
  const json r = json::parse(read_file_text(out + "/fid.json"));
  EXPECT_EQ(r["metric"], "fd_rerank");
  EXPECT_EQ(r["images"], 40);
  ASSERT_EQ(r["blur"].size(), 2u);
  for (const json& b : r["blur"]) {
    EXPECT_FALSE(b.contains("fid"));  // not Inception features: never called FID
    const double d = b["fd_rerank"];
    EXPECT_TRUE(std::isfinite(d) && d > 0) << b.dump();
    EXPECT_TRUE(b["kid"].is_number());
  }
  EXPECT_TRUE(path_exists(out + "/generated/000039.png"));
  EXPECT_TRUE(path_exists(out + "/fid.md"));

  // A rerun keeps the samples and gives the same figures.
  const std::string first = read_file_text(out + "/generated/000007.png");
  const test::CliRun again = test::dalle_run(cmd + " --blur 0,2");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(read_file_text(out + "/generated/000007.png"), first);
  EXPECT_EQ(json::parse(read_file_text(out + "/fid.json"))["blur"], r["blur"]);

  const test::CliRun missing = test::dalle_run(cmd + " --inception " + (dir / "none.safetensors").string());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("none.safetensors"), std::string::npos) << missing.output;
  const test::CliRun bad_blur = test::dalle_run(cmd + " --blur 0,x");
  EXPECT_EQ(bad_blur.code, 2);
  EXPECT_NE(bad_blur.output.find("--blur"), std::string::npos) << bad_blur.output;
}

}  // namespace
}  // namespace dalle

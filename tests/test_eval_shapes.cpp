// `dalle eval shapes` and its judge: the judge reads fresh renders, the prompts cover the world
// with the held-out pairs marked, and the report on the shipped model is complete and consistent.
#include <gtest/gtest.h>

#include <fstream>

#include "dalle/util/torch_api.h"

#include <nlohmann/json.hpp>

#include "dalle/data/shapes.h"
#include "dalle/eval/judge.h"
#include "dalle/eval/shapes_eval.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_util.h"

namespace dalle {
namespace {

using json = nlohmann::json;

TEST(ShapesScene, RendersTheSceneItIsAskedForAndLabelsRandomOnes) {
  ShapesOptions o;
  o.size = 32;
  for (int64_t i = 0; i < 50; ++i) {
    const ShapesSample s = shapes_render(i, o);
    ASSERT_FALSE(s.scene.objects.empty());
    const std::string colour = shapes_colour_names()[s.scene.objects[0].colour];
    EXPECT_NE(s.captions[0].find(colour), std::string::npos) << s.captions[0];
    EXPECT_EQ(s.scene.relation >= 0, s.scene.objects.size() == 2);
  }
  ShapesScene scene;
  scene.objects = {{0, 4}, {4, 1}};  // a red star above a blue square
  scene.relation = 0;
  const ShapesSample s = shapes_render_scene(scene, 3, o);
  EXPECT_EQ(s.scene.objects[0].shape, 4);
  EXPECT_EQ(s.scene.objects[1].colour, 4);
  EXPECT_EQ(s.scene.relation, 0);
  EXPECT_NE(s.captions[0].find("red"), std::string::npos) << s.captions[0];
  EXPECT_NE(s.captions[0].find("blue"), std::string::npos) << s.captions[0];
  // Deterministic: the same index draws the same image.
  EXPECT_EQ(shapes_render_scene(scene, 3, o).image.pixels, s.image.pixels);
  scene.relation = 5;
  EXPECT_THROW(shapes_render_scene(scene, 3, o), Error);
}

TEST(Judge, TrainsTo97PercentOnFreshRendersAtTheTinyResolution) {
  torch::set_num_threads(1);  // ctest runs two tests at once on two cores
  JudgeTrainOptions o;
  o.image_size = 32;
  o.steps = 1200;
  Judge judge = judge_train(o);
  const JudgeAccuracy a = judge_accuracy(judge, 2000, 77);
  std::printf("judge 32x32, %lld steps: colour %.4f shape %.4f both %.4f relation %.4f\n",
              static_cast<long long>(o.steps), a.colour, a.shape, a.both, a.relation);
  EXPECT_GE(a.both, 0.97);
  EXPECT_GE(a.relation, 0.90);
  const std::string path = (test::scratch_dir("judge") / "judge.safetensors").string();
  judge_save(judge, path, a);
  Judge loaded = judge_load(path, 32);
  EXPECT_NEAR(judge_accuracy(loaded, 500, 78).both, judge_accuracy(judge, 500, 78).both, 1e-12);
  EXPECT_THROW(judge_load(path, 64), Error);
}

TEST(ShapesEval, PromptsCoverEveryPairWithTheHeldOutOnesMarked) {
  ShapesEvalOptions o;
  const std::vector<ShapesPrompt> all = shapes_eval_prompts(o);
  int singles = 0, heldout_singles = 0, relations = 0, heldout_relations = 0;
  for (const ShapesPrompt& p : all) {
    const bool held = shapes_pair_heldout(p.scene.objects[0].colour, p.scene.objects[0].shape) ||
                      (p.scene.objects.size() == 2 && shapes_pair_heldout(p.scene.objects[1].colour, p.scene.objects[1].shape));
    EXPECT_EQ(p.heldout, held) << p.text;
    if (p.scene.objects.size() == 1) {
      ++singles;
      heldout_singles += p.heldout;
    } else {
      ++relations;
      heldout_relations += p.heldout;
      EXPECT_TRUE(p.text.find(" above ") != std::string::npos || p.text.find(" to the left of ") != std::string::npos);
    }
  }
  EXPECT_EQ(singles, 64 * 3);
  EXPECT_EQ(heldout_singles, 6 * 3);
  EXPECT_EQ(relations, 32);
  EXPECT_EQ(heldout_relations, 16);
  EXPECT_EQ(all.front().text, "a red circle");
  o.split = "heldout";
  for (const ShapesPrompt& p : shapes_eval_prompts(o)) EXPECT_TRUE(p.heldout) << p.text;
}

TEST(ShapesEval, ReportOnTheShippedModelIsCompleteAndResumes) {
  const std::string out = (test::scratch_dir("eval_shapes") / "eval").string();
  const std::string cmd = "eval shapes -m " + std::string(DALLE_SOURCE_DIR) +
                          "/models/default -o " + out + " -n 4 --seeds 1 --max-prompts 2 --relations 2 "
                          "--ceiling-renders 2 --judge-steps 300 -t 1";
  const test::CliRun run = test::dalle_run(cmd);
  ASSERT_EQ(run.code, 0) << run.output;
  const json r = json::parse(read_file_text(out + "/report.json"));
  for (const char* split : {"seen", "heldout"}) {
    ASSERT_TRUE(r.contains(split)) << r.dump(2);
    for (const char* which : {"first", "reranked"})
      for (const char* m : {"colour", "shape", "both"}) {
        const double v = r[split][which][m];
        EXPECT_GE(v, 0.0);
        EXPECT_LE(v, 1.0);
      }
    EXPECT_EQ(r["ceiling"][split]["both"].is_number(), true);
    const auto curve = r["rerank_curve"][split].get<std::vector<double>>();
    const auto oracle = r["oracle_curve"][split].get<std::vector<double>>();
    ASSERT_EQ(curve.size(), 3u);  // N = 1, 2, 4
    EXPECT_DOUBLE_EQ(curve.front(), r[split]["first"]["both"].get<double>());
    EXPECT_DOUBLE_EQ(curve.back(), r[split]["reranked"]["both"].get<double>());
    for (size_t i = 1; i < oracle.size(); ++i) EXPECT_GE(oracle[i], oracle[i - 1]);  // best of N by construction
  }
  EXPECT_TRUE(r["relations_heldout"]["first"].contains("relation"));
  EXPECT_GT(r["judge_accuracy"]["both"].get<double>(), 0.5);
  for (const char* file : {"report.md", "heldout_grid.png", "samples.jsonl", "judge.safetensors"})
    EXPECT_TRUE(path_exists(out + "/" + file)) << file;
  EXPECT_NE(read_file_text(out + "/report.md").find("Any of the first N right"), std::string::npos);

  // A second run finds every prompt done: same report, no new samples.
  const std::string samples = read_file_text(out + "/samples.jsonl");
  const test::CliRun again = test::dalle_run(cmd);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(read_file_text(out + "/samples.jsonl"), samples);
  EXPECT_EQ(json::parse(read_file_text(out + "/report.json"))["heldout"], r["heldout"]);
  // Other settings in the same folder are refused rather than mixed.
  const test::CliRun other = test::dalle_run(cmd + " --temperature 0.5");
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.output.find("--restart"), std::string::npos) << other.output;
}

}  // namespace
}  // namespace dalle

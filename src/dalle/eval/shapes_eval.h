// `dalle eval shapes`: the zero-shot composition benchmark. Every colour x shape pair of the shapes
// world as single-object prompts in a few templates, plus two-object relations ("a red square
// above a blue star"); the pairs the train split never showed are the zero-shot part. For each
// prompt and seed the bundle samples N candidates; the judge (eval/judge.h) reads them; the
// report gives the accuracy of the first sample and of the reranker's pick, the reranking curve
// (best of 1, 2, 4, ... N from the same samples) and the ceiling: the judge on the bundle's dVAE
// reconstructions of fresh renders of the same prompts.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dalle/bundle/bundle.h"
#include "dalle/eval/judge.h"
#include "dalle/sample/sampler.h"

namespace dalle {

struct ShapesPrompt {
  std::string text;
  ShapesScene scene;
  bool heldout = false;  // shows a (colour, shape) pair the train split never did
  int phrasing = -1;     // single objects: which template (0 = plain "a red circle"); -1 for two
};

struct ShapesEvalOptions {
  int candidates = 32;               // N per prompt and seed
  std::vector<uint64_t> seeds = {0, 1};
  int templates = 3;                 // single-object phrasings used (1..3)
  int relation_prompts = 16;         // two-object prompts per split
  int ceiling_renders = 8;           // fresh renders per prompt through the dVAE
  int max_prompts = 0;               // > 0: at most this many prompts per kind and split (quick runs)
  std::string split = "all";         // all, seen or heldout
  int batch = 32;
  SamplerSettings sampler;
  bool restart = false;              // ignore partial results in the output folder
  std::function<void(int64_t, int64_t)> progress;  // (candidates judged, total)
};

std::vector<ShapesPrompt> shapes_eval_prompts(const ShapesEvalOptions& options);

// Runs the benchmark, writing out/report.json, report.md, rerank_curve.png (when gnuplot is
// there), heldout_grid.png and samples.jsonl (per prompt and seed, appended as they finish: a
// rerun with the same settings continues from it). Returns the report.
nlohmann::json shapes_eval(Bundle& bundle, Judge& judge, const JudgeAccuracy& judge_accuracy,
                           const ShapesEvalOptions& options, const std::string& out);

}  // namespace dalle

#include "dalle/eval/shapes_eval.h"

#include "dalle/util/torch_api.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "dalle/io/image.h"
#include "dalle/io/plot.h"
#include "dalle/sample/generate.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

using json = nlohmann::json;

std::string with_article(const std::string& words) {
  return std::string("aeiou").find(words[0]) != std::string::npos ? "an " + words : "a " + words;
}

std::string object_words(const ShapesObject& o) {
  return with_article(shapes_colour_names()[o.colour] + " " + shapes_names()[o.shape]);
}

// Whether each candidate satisfies its prompt, as the judge reads it.
struct Verdicts {
  std::vector<int> colour, shape, both, relation;
};

void add_verdict(Verdicts& v, const JudgeReading& r, const ShapesScene& want) {
  const ShapesObject& a = want.objects[0];
  bool colour = r.first.colour == a.colour, shape = r.first.shape == a.shape;
  bool relation = false;
  if (want.objects.size() == 2) {
    const ShapesObject& b = want.objects[1];
    colour = colour && r.second.colour == b.colour;
    shape = shape && r.second.shape == b.shape;
    relation = colour && shape && r.objects == 2 && r.relation == want.relation;
  }
  v.colour.push_back(colour);
  v.shape.push_back(shape);
  v.both.push_back(colour && shape);
  v.relation.push_back(relation);
}

Verdicts judge_images(Judge& judge, const torch::Tensor& images_u8, const ShapesScene& want) {
  Verdicts v;
  for (const JudgeReading& r : judge_read(judge, images_u8)) add_verdict(v, r, want);
  return v;
}

// One prompt at one seed: the N candidates' rerank scores and verdicts, in sampling order.
struct Outcome {
  int prompt = 0;
  uint64_t seed = 0;
  std::vector<double> scores;
  Verdicts verdicts;
};

json outcome_json(const Outcome& o) {
  return {{"prompt", o.prompt}, {"seed", o.seed}, {"scores", o.scores}, {"colour", o.verdicts.colour},
          {"shape", o.verdicts.shape}, {"both", o.verdicts.both}, {"relation", o.verdicts.relation}};
}

Outcome outcome_from_json(const json& j) {
  Outcome o;
  o.prompt = j.at("prompt");
  o.seed = j.at("seed");
  o.scores = j.at("scores").get<std::vector<double>>();
  o.verdicts = {j.at("colour").get<std::vector<int>>(), j.at("shape").get<std::vector<int>>(),
                j.at("both").get<std::vector<int>>(), j.at("relation").get<std::vector<int>>()};
  return o;
}

size_t best_of_first(const std::vector<double>& scores, size_t k) {
  size_t best = 0;
  for (size_t i = 1; i < k; ++i)
    if (scores[i] > scores[best]) best = i;
  return best;
}

std::vector<int> curve_sizes(int n) {
  std::vector<int> ks;
  for (int k = 1; k < n; k *= 2) ks.push_back(k);
  ks.push_back(n);
  return ks;
}

// Means over a group of outcomes: first sample, reranker's pick, and best-of-k curves.
struct GroupStats {
  int prompts = 0, outcomes = 0;
  double first[4] = {}, reranked[4] = {};  // colour, shape, both, relation
  std::vector<double> curve, oracle;       // "both" of the reranker's pick / of any among the first k
};

GroupStats group_stats(const std::vector<const Outcome*>& outcomes, const std::vector<int>& ks, bool reranker) {
  GroupStats g;
  g.curve.assign(ks.size(), 0);
  g.oracle.assign(ks.size(), 0);
  std::set<int> prompts;
  for (const Outcome* o : outcomes) {
    prompts.insert(o->prompt);
    const std::vector<int>* v[4] = {&o->verdicts.colour, &o->verdicts.shape, &o->verdicts.both, &o->verdicts.relation};
    const size_t pick = reranker ? best_of_first(o->scores, o->scores.size()) : 0;
    for (int m = 0; m < 4; ++m) {
      g.first[m] += (*v[m])[0];
      g.reranked[m] += (*v[m])[pick];
    }
    for (size_t i = 0; i < ks.size(); ++i) {
      const size_t k = std::min<size_t>(ks[i], o->scores.size());
      g.curve[i] += o->verdicts.both[reranker ? best_of_first(o->scores, k) : 0];
      int any = 0;
      for (size_t j = 0; j < k; ++j) any |= o->verdicts.both[j];
      g.oracle[i] += any;
    }
  }
  g.prompts = static_cast<int>(prompts.size());
  g.outcomes = static_cast<int>(outcomes.size());
  const double n = std::max(1, g.outcomes);
  for (int m = 0; m < 4; ++m) {
    g.first[m] /= n;
    g.reranked[m] /= n;
  }
  for (size_t i = 0; i < ks.size(); ++i) {
    g.curve[i] /= n;
    g.oracle[i] /= n;
  }
  return g;
}

json accuracy_json(const double* m, bool relation) {
  json j = {{"colour", m[0]}, {"shape", m[1]}, {"both", m[2]}};
  if (relation) j["relation"] = m[3];
  return j;
}

torch::Tensor stack_images(const std::vector<Image>& images) {
  std::vector<torch::Tensor> t;
  for (const Image& im : images) t.push_back(image_to_tensor(im));
  return torch::stack(t);
}

std::string percent(double x) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * x);
  return buf;
}

}  // namespace

std::vector<ShapesPrompt> shapes_eval_prompts(const ShapesEvalOptions& o) {
  static const char* const kTemplates[] = {"%s", "a picture of %s", "there is %s in the middle"};
  const int colours = static_cast<int>(shapes_colour_names().size()), shapes = static_cast<int>(shapes_names().size());
  const bool want_seen = o.split != "heldout", want_heldout = o.split != "seen";
  std::vector<ShapesPrompt> out;
  std::map<std::pair<int, bool>, int> taken;  // (kind, heldout) -> prompts so far
  const auto add = [&](ShapesPrompt p, int kind) {
    if ((p.heldout && !want_heldout) || (!p.heldout && !want_seen)) return;
    int& n = taken[{kind, p.heldout}];
    if (o.max_prompts > 0 && n >= o.max_prompts) return;
    ++n;
    out.push_back(std::move(p));
  };
  for (int t = 0; t < std::clamp(o.templates, 1, 3); ++t)
    for (int c = 0; c < colours; ++c)
      for (int s = 0; s < shapes; ++s) {
        ShapesPrompt p;
        p.scene.objects = {{c, s}};
        char text[128];
        std::snprintf(text, sizeof(text), kTemplates[t], object_words({c, s}).c_str());
        p.text = text;
        p.heldout = shapes_pair_heldout(c, s);
        p.phrasing = t;
        add(p, 0);
      }
  // Two-object prompts: a fixed draw, so every run asks the same.
  std::mt19937_64 rng(20210224);
  for (bool heldout : {false, true}) {
    for (int made = 0, tries = 0; made < o.relation_prompts && tries < 100000; ++tries) {
      ShapesPrompt p;
      for (int i = 0; i < 2; ++i)
        p.scene.objects.push_back({std::uniform_int_distribution<int>(0, colours - 1)(rng),
                                   std::uniform_int_distribution<int>(0, shapes - 1)(rng)});
      const ShapesObject &a = p.scene.objects[0], &b = p.scene.objects[1];
      if (a.colour == b.colour && a.shape == b.shape) continue;
      p.heldout = shapes_pair_heldout(a.colour, a.shape) || shapes_pair_heldout(b.colour, b.shape);
      if (p.heldout != heldout) continue;
      p.scene.relation = std::uniform_int_distribution<int>(0, 1)(rng);
      p.text = object_words(a) + (p.scene.relation == 0 ? " above " : " to the left of ") + object_words(b);
      add(p, 1);
      ++made;
    }
  }
  return out;
}

json shapes_eval(Bundle& bundle, Judge& judge, const JudgeAccuracy& judge_acc, const ShapesEvalOptions& o,
                 const std::string& out) {
  const int size = bundle.config.vae.image_size;
  if (judge->image_size() != size)
    throw Error("eval shapes: the judge reads " + std::to_string(judge->image_size()) + "px images, the model draws " +
                std::to_string(size) + "px");
  if (o.candidates < 1) throw Error("eval shapes: need at least one candidate");
  const std::vector<ShapesPrompt> prompts = shapes_eval_prompts(o);
  if (prompts.empty()) throw Error("eval shapes: no prompts (check --split and --max-prompts)");
  const bool reranker = static_cast<bool>(bundle.reranker);
  make_dirs(out);

  // Partial results of the same settings continue; other settings start over only when asked.
  const json settings = {{"model", bundle.path}, {"model_name", bundle.config.name},
                         {"weights", weight_format_name(bundle.weights)}, {"candidates", o.candidates},
                         {"seeds", o.seeds}, {"templates", o.templates}, {"relation_prompts", o.relation_prompts},
                         {"max_prompts", o.max_prompts}, {"split", o.split},
                         {"sampler", {{"temperature", o.sampler.temperature}, {"top_k", o.sampler.top_k},
                                      {"top_p", o.sampler.top_p}, {"cfg_scale", o.sampler.cfg_scale}}}};
  const std::string settings_path = path_join(out, "settings.json");
  const std::string samples_path = path_join(out, "samples.jsonl");
  std::map<std::pair<int, uint64_t>, Outcome> done;
  if (!o.restart && path_exists(settings_path) && path_exists(samples_path)) {
    if (json::parse(read_file_text(settings_path)) != settings)
      throw file_error(out, "holds results of other settings (settings.json): use another folder, or --restart");
    std::ifstream in(samples_path);
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) break;  // a line cut short by an interrupted run
      const Outcome oc = outcome_from_json(j);
      done[{oc.prompt, oc.seed}] = oc;
    }
  }
  write_file_atomic(settings_path, settings.dump(2) + "\n");
  {  // rewrite what was kept (dropping any torn last line), then append
    std::string kept;
    for (const auto& [key, oc] : done) kept += outcome_json(oc).dump() + "\n";
    write_file_atomic(samples_path, kept);
  }
  std::ofstream log(samples_path, std::ios::app);

  const int64_t total = static_cast<int64_t>(prompts.size() * o.seeds.size()) * o.candidates;
  int64_t judged = static_cast<int64_t>(done.size()) * o.candidates;
  const auto grid_prompt = [&](int i) { return prompts[i].heldout && prompts[i].phrasing == 0; };
  const auto sample = [&](int i, uint64_t seed) {
    GenerateRequest r;
    r.prompt = prompts[i].text;
    r.count = o.candidates;
    r.keep = 0;
    r.batch = std::min(o.batch, o.candidates);
    r.seed = seed * 1000003 + static_cast<uint64_t>(i);
    r.sampler = o.sampler;
    std::vector<GeneratedImage> images = generate_images(bundle, r);
    std::sort(images.begin(), images.end(), [](const GeneratedImage& a, const GeneratedImage& b) { return a.index < b.index; });
    return images;
  };
  for (size_t i = 0; i < prompts.size(); ++i)
    for (uint64_t seed : o.seeds) {
      const int pi = static_cast<int>(i);
      if (done.count({pi, seed})) continue;
      const std::vector<GeneratedImage> images = sample(pi, seed);
      Outcome oc;
      oc.prompt = pi;
      oc.seed = seed;
      std::vector<Image> pixels;
      for (const GeneratedImage& g : images) {
        oc.scores.push_back(g.score);
        pixels.push_back(g.image);
      }
      oc.verdicts = judge_images(judge, stack_images(pixels), prompts[i].scene);
      log << outcome_json(oc).dump() << "\n" << std::flush;
      done[{pi, seed}] = oc;
      judged += o.candidates;
      if (o.progress) o.progress(judged, total);
    }

  // The grid: each held-out prompt's best candidates by rerank score (first seed).
  std::vector<Image> tiles;
  std::string grid_prompts;
  const int columns = std::min(4, o.candidates);
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (!grid_prompt(static_cast<int>(i))) continue;
    std::vector<GeneratedImage> images = sample(static_cast<int>(i), o.seeds.front());
    std::stable_sort(images.begin(), images.end(), [](const GeneratedImage& a, const GeneratedImage& b) { return a.score > b.score; });
    for (int c = 0; c < columns; ++c) tiles.push_back(images[c].image);
    grid_prompts += (grid_prompts.empty() ? "" : "; ") + prompts[i].text;
  }
  if (!tiles.empty())
    image_save_png(path_join(out, "heldout_grid.png"), image_grid(tiles, columns),
                   {{"description", "held-out prompts, one per row, best rerank score first"}, {"prompts", grid_prompts}});

  // The ceiling: fresh renders of each prompt through the bundle's dVAE.
  std::map<int, Verdicts> ceiling;
  {
    torch::InferenceMode inference;
    ShapesOptions render;
    render.size = size;
    render.seed = 4242;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<Image> renders;
      for (int k = 0; k < o.ceiling_renders; ++k)
        renders.push_back(shapes_render_scene(prompts[i].scene, static_cast<int64_t>(i) * 1000 + k, render).image);
      if (renders.empty()) continue;
      const torch::Tensor decoded = bundle.vae->decode_tokens(bundle.vae->encode_images(stack_images(renders))).cpu();
      const torch::Tensor u8 = decoded.mul(255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
      ceiling[static_cast<int>(i)] = judge_images(judge, u8, prompts[i].scene);
    }
  }

  const std::vector<int> ks = curve_sizes(o.candidates);
  struct Group {
    const char* key;
    int objects;
    bool heldout;
  };
  const Group groups[] = {{"seen", 1, false}, {"heldout", 1, true}, {"relations_seen", 2, false}, {"relations_heldout", 2, true}};
  json report = {{"model", bundle.path},
                 {"model_name", bundle.config.name},
                 {"weights", weight_format_name(bundle.weights)},
                 {"image_size", size},
                 {"candidates", o.candidates},
                 {"seeds", o.seeds},
                 {"reranker", reranker},
                 {"judge_accuracy",
                  {{"colour", judge_acc.colour}, {"shape", judge_acc.shape}, {"both", judge_acc.both},
                   {"relation", judge_acc.relation}, {"images", judge_acc.images}}},
                 {"ceiling", json::object()},
                 {"rerank_curve", {{"n", ks}}},
                 {"oracle_curve", {{"n", ks}}}};
  std::vector<PlotSeries> plot;
  std::string table;
  for (const Group& g : groups) {
    std::vector<const Outcome*> members;
    Verdicts ceil;
    std::set<int> group_prompts;
    for (const auto& [key, oc] : done) {
      const ShapesPrompt& p = prompts[oc.prompt];
      if (static_cast<int>(p.scene.objects.size()) == g.objects && p.heldout == g.heldout) members.push_back(&oc);
    }
    for (size_t i = 0; i < prompts.size(); ++i)
      if (static_cast<int>(prompts[i].scene.objects.size()) == g.objects && prompts[i].heldout == g.heldout && ceiling.count(i)) {
        const Verdicts& v = ceiling[i];
        ceil.colour.insert(ceil.colour.end(), v.colour.begin(), v.colour.end());
        ceil.shape.insert(ceil.shape.end(), v.shape.begin(), v.shape.end());
        ceil.both.insert(ceil.both.end(), v.both.begin(), v.both.end());
        ceil.relation.insert(ceil.relation.end(), v.relation.begin(), v.relation.end());
      }
    if (members.empty()) continue;
    const GroupStats s = group_stats(members, ks, reranker);
    const bool rel = g.objects == 2;
    report[g.key] = {{"prompts", s.prompts}, {"samples", s.outcomes}, {"first", accuracy_json(s.first, rel)},
                     {"reranked", accuracy_json(s.reranked, rel)}};
    const auto mean = [](const std::vector<int>& v) {
      double sum = 0;
      for (int x : v) sum += x;
      return v.empty() ? 0.0 : sum / v.size();
    };
    const double c[4] = {mean(ceil.colour), mean(ceil.shape), mean(ceil.both), mean(ceil.relation)};
    report["ceiling"][g.key] = accuracy_json(c, rel);
    report["rerank_curve"][g.key] = s.curve;
    report["oracle_curve"][g.key] = s.oracle;
    plot.push_back({std::string(g.key) + ": reranker's pick", s.curve});
    plot.push_back({std::string(g.key) + ": any correct", s.oracle});
    char row[512];
    std::snprintf(row, sizeof(row), "| %s | %d | %s / %s / %s | %s / %s / %s | %s | %s |\n", g.key, s.prompts,
                  percent(s.first[0]).c_str(), percent(s.first[1]).c_str(), percent(s.first[2]).c_str(),
                  percent(s.reranked[0]).c_str(), percent(s.reranked[1]).c_str(), percent(s.reranked[2]).c_str(),
                  rel ? (percent(s.first[3]) + " → " + percent(s.reranked[3])).c_str() : "",
                  percent(c[2]).c_str());
    table += row;
  }
  write_file_atomic(path_join(out, "report.json"), report.dump(2) + "\n");

  std::string md = "# dalle eval shapes: " + bundle.config.name + " (" + bundle.path + ", " +
                   weight_format_name(bundle.weights) + " weights)\n\n";
  md += std::to_string(o.candidates) + " candidates per prompt and seed, " + std::to_string(o.seeds.size()) +
        " seed(s); reranked = the " + (reranker ? "reranker's pick of all " + std::to_string(o.candidates)
                                                : std::string("first sample (the bundle has no reranker)")) + ".\n";
  md += "Judge accuracy on fresh renders (colour and shape of an object): " + percent(judge_acc.both) +
        "; two-object layout and order: " + percent(judge_acc.relation) + ".\n\n";
  md += "| prompts | count | first: colour / shape / both | reranked: colour / shape / both | relation (first → reranked) | "
        "ceiling (both) |\n|---|---|---|---|---|---|\n" + table;
  const auto curve_lines = [&](const char* curve) {
    for (const Group& g : groups)
      if (report.contains(g.key)) {
        md += "- " + std::string(g.key) + ":";
        for (double v : report[curve][g.key]) md += " " + percent(v);
        md += "\n";
      }
  };
  md += "\nReranking curve (both right, the reranker's pick among the first N): N = ";
  for (int k : ks) md += std::to_string(k) + " ";
  md += "\n\n";
  curve_lines("rerank_curve");
  // Against a perfect picker: where this is far above the curve, the reranker is what limits.
  md += "\nAny of the first N right (what a perfect reranker would reach):\n\n";
  curve_lines("oracle_curve");
  write_file_atomic(path_join(out, "report.md"), md);
  try {
    std::vector<double> x(ks.begin(), ks.end());
    plot_curves(path_join(out, "rerank_curve.png"), "best of N: both colour and shape right (" + bundle.config.name + ")",
                "candidates N", "accuracy", x, plot, true);
  } catch (const Error& e) {
    std::fprintf(stderr, "eval shapes: no plot: %s\n", e.what());
  }
  return report;
}

}  // namespace dalle

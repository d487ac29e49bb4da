// dalle plot: render a run's loss curves to a PNG.
#include <cstdio>

#include "cli/command.h"
#include "dalle/io/plot.h"
#include "dalle/util/fs.h"

namespace dalle::cli {

namespace {

struct PlotFlags {
  std::string run;
  std::string output;
};

int run_plot(const PlotFlags& f) {
  const std::string out = f.output.empty() ? path_join(f.run, "loss.png") : f.output;
  plot_metrics(path_join(f.run, "metrics.jsonl"), out);
  std::fprintf(stderr, "plot: wrote %s\n", out.c_str());
  const std::string stem = out.size() > 4 && out.compare(out.size() - 4, 4, ".png") == 0 ? out.substr(0, out.size() - 4) : out;
  const std::string scales_out = stem + "-grad-scales.png";
  if (plot_grad_scales(path_join(f.run, "metrics.jsonl"), scales_out))
    std::fprintf(stderr, "plot: wrote %s\n", scales_out.c_str());
  return 0;
}

}  // namespace

void register_plot(CLI::App& app, Action& action) {
  static PlotFlags f;
  CLI::App* cmd = app.add_subcommand("plot", "Render a training run's loss curves (metrics.jsonl) to PNG, and a 16-bit run's gradient scales");
  cmd->add_option("run", f.run, "Run folder of `dalle train` or `dalle vae train`")->required();
  cmd->add_option("-o,--output", f.output, "Output PNG (default: RUN/loss.png); gradient scales go to OUT-grad-scales.png");
  cmd->callback([&action] { action = [] { return run_plot(f); }; });
}

}  // namespace dalle::cli

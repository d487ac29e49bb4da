// Loss curves from RUN/metrics.jsonl rendered to PNG with gnuplot (Debian's gnuplot-nox).
#pragma once
#include <string>
#include <vector>

namespace dalle {

// Plots every known series present in the file (prior: loss, loss_text, loss_img and their
// validation values; dVAE: loss and PSNR). Throws naming the file when it has no data or
// gnuplot is missing or fails.
void plot_metrics(const std::string& metrics_path, const std::string& png_path);

// The per-resblock gradient scales of a 16-bit prior run (log2, one line per resblock: attn_0,
// mlp_0, attn_1, ...), like the paper's Fig. 12. Returns false, writing nothing, when the run
// logged none (fp32 runs, dVAE runs).
bool plot_grad_scales(const std::string& metrics_path, const std::string& png_path);

// Lines through (x, y) points, one per named series (all over the same x), on a log2 x axis
// when `log2_x`: e.g. accuracy against the number of reranked candidates.
struct PlotSeries {
  std::string title;
  std::vector<double> y;
};
void plot_curves(const std::string& png_path, const std::string& title, const std::string& x_label,
                 const std::string& y_label, const std::vector<double>& x, const std::vector<PlotSeries>& series,
                 bool log2_x);

}  // namespace dalle

#include "dalle/io/plot.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

struct Series {
  const char* key;
  const char* title;
  bool right_axis;
};

const std::vector<Series>& known_series() {
  static const std::vector<Series> s = {
      {"loss", "train loss", false},          {"loss_text", "train text CE", false},
      {"loss_img", "train image CE", false},  {"val_loss_text", "val text CE", false},
      {"val_loss_img", "val image CE", false}, {"psnr", "PSNR (dB, right)", true}};
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Runs `script` (which reads `data_path`) through gnuplot, then removes both files.
void run_gnuplot(const std::string& script, const std::string& data_path, const std::string& png_path) {
  const std::string script_path = png_path + ".gp";
  write_file_atomic(script_path, script);
  const std::string cmd = "gnuplot " + quote(script_path) + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw Error("cannot run gnuplot: install gnuplot-nox (scripts/install-deps.sh --plot)");
  std::string output;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = ::pclose(pipe);
  std::remove(script_path.c_str());
  std::remove(data_path.c_str());
  if (status != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      throw Error("gnuplot not found: install gnuplot-nox (scripts/install-deps.sh --plot)");
    throw file_error(png_path, "gnuplot failed: " + output.substr(0, output.find('\n')));
  }
}

std::string run_title(const std::string& metrics_path) {
  return std::filesystem::path(metrics_path).parent_path().filename().string();
}

}  // namespace

void plot_metrics(const std::string& metrics_path, const std::string& png_path) {
  std::ifstream in(metrics_path);
  if (!in) throw file_error(metrics_path, "cannot open (is this a run folder?)");
  const auto& series = known_series();
  std::vector<bool> present(series.size(), false);
  const std::string data_path = png_path + ".dat";
  std::string data;
  std::string line;
  int64_t rows = 0, lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step"))
      throw file_error(metrics_path, "line " + std::to_string(lineno) + " is not a metrics record");
    data += std::to_string(j["step"].get<int64_t>());
    for (size_t i = 0; i < series.size(); ++i) {
      const auto it = j.find(series[i].key);
      if (it != j.end() && it->is_number() && std::isfinite(it->get<double>())) {
        present[i] = true;
        char buf[32];
        std::snprintf(buf, sizeof(buf), " %.6g", it->get<double>());
        data += buf;
      } else {
        data += " NaN";
      }
    }
    data += "\n";
    ++rows;
  }
  if (rows == 0) throw file_error(metrics_path, "no metrics to plot yet");
  write_file_atomic(data_path, data);

  std::string script = "set terminal pngcairo noenhanced size 1000,600 font 'sans,10'\n";
  script += "set output " + quote(png_path) + "\n";
  script += "set title " + quote(run_title(metrics_path)) + "\n";
  script += "set xlabel 'step'\nset ylabel 'loss (nats)'\nset grid\nset key outside right\n";
  script += "set datafile missing 'NaN'\n";
  std::string plots;
  bool right = false;
  for (size_t i = 0; i < series.size(); ++i) {
    if (!present[i]) continue;
    right |= series[i].right_axis;
    // Validation points are sparse: draw them as points with lines between them.
    const bool sparse = std::string(series[i].key).rfind("val_", 0) == 0;
    plots += std::string(plots.empty() ? "plot " : ", ") + quote(data_path) + " using 1:" +
             std::to_string(i + 2) + (series[i].right_axis ? " axes x1y2" : "") + " with " +
             (sparse ? "linespoints" : "lines") + " title " + quote(series[i].title);
  }
  if (right) script += "set y2label 'PSNR (dB)'\nset y2tics\n";
  script += plots + "\n";
  run_gnuplot(script, data_path, png_path);
}

bool plot_grad_scales(const std::string& metrics_path, const std::string& png_path) {
  std::ifstream in(metrics_path);
  if (!in) throw file_error(metrics_path, "cannot open (is this a run folder?)");
  std::string data, line;
  size_t blocks = 0;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j.contains("grad_scales")) continue;
    const auto scales = j["grad_scales"].get<std::vector<double>>();
    if (blocks == 0) blocks = scales.size();
    if (scales.size() != blocks) throw file_error(metrics_path, "grad_scales change length between lines");
    data += std::to_string(j["step"].get<int64_t>());
    for (double v : scales) data += " " + std::to_string(std::log2(v));
    data += "\n";
  }
  if (blocks == 0) return false;
  const std::string data_path = png_path + ".dat";
  write_file_atomic(data_path, data);
  // log2 of the scale on a linear axis: the paper's Fig. 12 reads in powers of two.
  std::string script = "set terminal pngcairo noenhanced size 1000,600 font 'sans,10'\n";
  script += "set output " + quote(png_path) + "\n";
  script += "set title " + quote(run_title(metrics_path) + ": per-resblock gradient scales") + "\n";
  script += "set xlabel 'step'\nset ylabel 'log2(gradient scale)'\nset grid\nset key outside right\n";
  std::string plots;
  for (size_t b = 0; b < blocks; ++b)
    plots += std::string(plots.empty() ? "plot " : ", ") + quote(data_path) + " using 1:" + std::to_string(b + 2) +
             " with lines title '" + (b % 2 == 0 ? "attn_" : "mlp_") + std::to_string(b / 2) + "'";
  script += plots + "\n";
  run_gnuplot(script, data_path, png_path);
  return true;
}

void plot_curves(const std::string& png_path, const std::string& title, const std::string& x_label,
                 const std::string& y_label, const std::vector<double>& x, const std::vector<PlotSeries>& series,
                 bool log2_x) {
  std::string data;
  for (size_t i = 0; i < x.size(); ++i) {
    data += std::to_string(x[i]);
    for (const PlotSeries& s : series) data += i < s.y.size() ? " " + std::to_string(s.y[i]) : " NaN";
    data += "\n";
  }
  const std::string data_path = png_path + ".dat";
  write_file_atomic(data_path, data);
  std::string script = "set terminal pngcairo noenhanced size 900,560 font 'sans,10'\n";
  script += "set output " + quote(png_path) + "\nset title " + quote(title) + "\n";
  script += "set xlabel " + quote(x_label) + "\nset ylabel " + quote(y_label) + "\nset grid\nset key bottom right\n";
  script += "set datafile missing 'NaN'\n";
  if (log2_x) script += "set logscale x 2\n";
  std::string plots;
  for (size_t i = 0; i < series.size(); ++i)
    plots += std::string(plots.empty() ? "plot " : ", ") + quote(data_path) + " using 1:" + std::to_string(i + 2) +
             " with linespoints title " + quote(series[i].title);
  run_gnuplot(script + plots + "\n", data_path, png_path);
}

}  // namespace dalle

// A terminal progress bar with rate and ETA, in the style of llama.cpp / tqdm.
// On a terminal it redraws in place; otherwise (a log file, CI) it writes one plain line at most
// every `log_every_seconds` and a last line when it finishes, so logs stay small.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dalle {

// Process-wide: what the CLI's --quiet and --log-every set.
struct ProgressSettings {
  bool quiet = false;              // no bars at all
  double log_every_seconds = 5.0;  // when stderr is not a terminal; 0 = only each bar's last line
};
void progress_configure(const ProgressSettings& settings);
const ProgressSettings& progress_settings();

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  // Advance to `done` and show `extra` (e.g. "loss 1.23") after the rate.
  void update(int64_t done, const std::string& extra = "");
  // The last line; `extra` defaults to the last update's.
  void finish(const std::string& extra = "");
  void set_total(int64_t total) { total_ = total; }
  double elapsed_seconds() const;

 private:
  void draw(const std::string& extra, bool log_line);

  std::string label_;
  int64_t total_;
  std::string unit_;
  int64_t done_ = 0;
  std::string last_extra_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;  // last redraw (terminal) or line (log)
  bool drew_final_ = false;  // the log line for done == total is written
};

std::string format_duration(double seconds);

}  // namespace dalle

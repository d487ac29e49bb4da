// A terminal progress bar with rate and ETA, in the style of llama.cpp / tqdm.
// It redraws in place on a TTY and prints a line every ~10% otherwise (logs, CI).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dalle {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  // Advance to `done` and show `extra` (e.g. "loss 1.23") after the rate.
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  void set_total(int64_t total) { total_ = total; }
  double elapsed_seconds() const;

 private:
  void draw(const std::string& extra, bool final_line);

  std::string label_;
  int64_t total_;
  std::string unit_;
  int64_t done_ = 0;
  int64_t last_logged_decile_ = -1;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

std::string format_duration(double seconds);

}  // namespace dalle

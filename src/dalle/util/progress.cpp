#include "dalle/util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dalle {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

namespace {

ProgressSettings& settings_storage() {
  static ProgressSettings settings;
  return settings;
}

}  // namespace

void progress_configure(const ProgressSettings& settings) { settings_storage() = settings; }
const ProgressSettings& progress_settings() { return settings_storage(); }

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, const std::string& extra) {
  done_ = done;
  last_extra_ = extra;
  if (progress_settings().quiet) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(extra, false);
    return;
  }
  // A log: a line once the interval has passed since the last one; the rest waits for finish().
  const double every = progress_settings().log_every_seconds;
  if (every <= 0 || std::chrono::duration<double>(now - last_draw_).count() < every) return;
  last_draw_ = now;
  drew_final_ = total_ > 0 && done_ >= total_;
  draw(extra, true);
}

void ProgressBar::finish(const std::string& given_extra) {
  if (finished_) return;
  finished_ = true;
  if (progress_settings().quiet) return;
  const std::string& extra = given_extra.empty() ? last_extra_ : given_extra;
  if (tty_) {
    draw(extra, false);
    std::fputc('\n', stderr);
  } else if (!drew_final_) {
    draw(extra, true);
  }
  std::fflush(stderr);
}

void ProgressBar::draw(const std::string& extra, bool log_line) {
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = rate > 0 ? (total_ - done_) / rate : -1;
  if (log_line) {
    // Plain text for logs: no bar, no carriage return.
    const double percent = total_ > 0 ? 100.0 * done_ / total_ : 0.0;
    std::fprintf(stderr, "%s: %lld/%lld (%.0f%%) %.2f %s/s elapsed %s eta %s %s\n", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), percent, rate, unit_.c_str(),
                 format_duration(elapsed).c_str(), format_duration(eta).c_str(), extra.c_str());
    std::fflush(stderr);
    return;
  }
  const int width = 24;
  const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %.2f %s/s %s<%s %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), rate, unit_.c_str(),
               format_duration(elapsed).c_str(), format_duration(eta).c_str(), extra.c_str());
  std::fflush(stderr);
}

}  // namespace dalle

// A child process whose output goes to a log file: how tests and benchmarks run `dalle serve`
// (and other long-lived commands) beside themselves, watch its log, signal it and measure it.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace dalle {

class Subprocess {
 public:
  // Starts argv[0] (a path) with its stdout and stderr appended to `log_path`.
  Subprocess(const std::vector<std::string>& argv, const std::string& log_path);
  ~Subprocess();  // kills it (SIGKILL) if it still runs
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  std::string log() const;
  // The log once it contains `text`; nullopt if the process exits first or `timeout_s` passes.
  std::optional<std::string> wait_for_log(const std::string& text, double timeout_s) const;
  void signal(int sig) const;
  // The exit status once it exits (128 + signal number if a signal ended it); nullopt after
  // `timeout_s`.
  std::optional<int> wait(double timeout_s);
  // Peak resident memory so far (VmHWM), in KiB; 0 once it has exited.
  long peak_rss_kib() const;

 private:
  bool exited() const;  // reaps it and records its status when it has exited

  pid_t pid_ = -1;
  std::string log_path_;
  mutable std::optional<int> status_;
};

}  // namespace dalle

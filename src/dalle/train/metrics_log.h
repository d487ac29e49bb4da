// RUN/metrics.jsonl: one JSON object per step. On resume, lines past the checkpoint's step are
// dropped first, so the file reads as one uninterrupted run.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>

namespace dalle {

class MetricsLog {
 public:
  // Keeps existing lines with "step" <= keep_through (all lines dropped if keep_through < 0).
  MetricsLog(const std::string& path, int64_t keep_through);
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace dalle

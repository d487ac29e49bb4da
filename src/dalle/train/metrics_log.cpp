#include "dalle/train/metrics_log.h"

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

MetricsLog::MetricsLog(const std::string& path, int64_t keep_through) : path_(path) {
  std::string kept;
  if (keep_through >= 0 && path_exists(path)) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.value("step", int64_t(-1)) <= keep_through)
        kept += line + "\n";
    }
  }
  write_file_atomic(path, kept);
  out_.open(path, std::ios::app);
  if (!out_) throw file_error(path, "cannot open for writing");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

}  // namespace dalle

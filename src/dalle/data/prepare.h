// `dalle data prepare`: read any source (sample_source.h), apply the collection filters
// (filters.h), shrink images to a maximum side, and write WebDataset shards plus a report that
// accounts for every sample: seen = kept + the sum of the drops.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "dalle/data/filters.h"

namespace dalle {

struct PrepareOptions {
  std::string input;
  std::string output;
  FilterOptions filters;
  SourceOptions source;
  int max_side = 512;           // longer side after resizing (never enlarged); 0 keeps the size
  int64_t shard_size = 10000;   // samples per shard
  std::string image_format = "auto";  // auto (PNG stays PNG, the rest JPEG), png, jpg
  int jpeg_quality = 90;
  int threads = 0;              // 0: all cores
  int64_t limit = -1;           // stop after this many samples seen (-1: all)
};

struct PrepareReport {
  int64_t seen = 0;
  int64_t kept = 0;
  std::map<std::string, int64_t> dropped;
  int64_t captions_seen = 0;
  int64_t captions_kept = 0;
  std::map<std::string, int64_t> captions_dropped;  // per caption line, kept images included
  int64_t utf8_repaired = 0;
  int64_t shards = 0;
  int64_t bytes_written = 0;
  double seconds = 0;
  // The first few drop messages per reason, for the terminal.
  std::map<std::string, std::vector<std::string>> examples;

  nlohmann::json to_json(const PrepareOptions& options) const;
};

// Writes OUT/shard-NNNNNN.tar and OUT/report.json. `progress(seen, total)`; total is -1 when
// the source cannot say.
PrepareReport prepare_dataset(const PrepareOptions& options,
                              const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace dalle

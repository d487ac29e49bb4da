// WebDataset tar shards, read and written with libarchive. A sample is the run of consecutive
// members that share a key: the member path up to the first dot of its file name
// (`dir/000123.jpg` and `dir/000123.txt` → key `dir/000123`). Reading never extracts anything:
// member bytes go to memory only, and members with absolute or `..` names are reported as
// unsafe samples instead of being used.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dalle/data/sample_source.h"

struct archive;

namespace dalle {

// Reads samples from `shards` in order. A shard that is missing or unreadable throws; one that
// is not a tar, or is corrupt or truncated part-way, yields one sample with reason `tar_corrupt`
// (after the samples read before the damage) and reading goes on with the next shard.
class TarShardSource : public SampleSource {
 public:
  TarShardSource(std::vector<std::string> shards, SourceOptions options);
  ~TarShardSource() override;
  bool next(RawSample& out) override;

  // Index of the shard being read and the number of samples already returned from it.
  size_t shard_index() const { return shard_; }

 private:
  bool open_next_shard();
  void close_shard();
  // Reads the next member into pending_*; false at the end of the shard (or on corruption).
  bool read_member();

  std::vector<std::string> shards_;
  SourceOptions options_;
  size_t shard_ = 0;
  bool opened_ = false;
  struct archive* ar_ = nullptr;
  // One member read ahead: the first member of the next sample.
  bool have_pending_ = false;
  std::string pending_name_;
  std::vector<uint8_t> pending_data_;
  bool pending_too_big_ = false;
  int64_t pending_size_ = 0;
  bool corrupt_ = false;
  std::string corrupt_detail_;
};

// Splits a member name into WebDataset key and extension (lowercase, without the dot):
// "a/b/000123.seg.png" → {"a/b/000123", "seg.png"}.
std::pair<std::string, std::string> webdataset_split(const std::string& member_name);
// Absolute, empty, or containing a `..` component (either slash).
bool tar_member_name_unsafe(const std::string& member_name);

// Writes `key.EXT` members into `path` (pax format, fixed time and mode so the same input gives
// the same bytes). Written to `path.tmp` and renamed on close().
class TarShardWriter {
 public:
  explicit TarShardWriter(std::string path);
  ~TarShardWriter();
  TarShardWriter(const TarShardWriter&) = delete;
  TarShardWriter& operator=(const TarShardWriter&) = delete;

  void add(const std::string& member_name, const void* data, size_t size);
  void add(const std::string& member_name, const std::string& text) {
    add(member_name, text.data(), text.size());
  }
  void close();
  int64_t members() const { return members_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  std::string tmp_;
  struct archive* ar_ = nullptr;
  int64_t members_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace dalle

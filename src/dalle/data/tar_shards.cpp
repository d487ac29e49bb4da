#include "dalle/data/tar_shards.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dalle/data/filters.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_member(const std::string& ext) {
  // The last part decides: "seg.png" is a PNG.
  const size_t dot = ext.rfind('.');
  return is_sample_image_extension("." + (dot == std::string::npos ? ext : ext.substr(dot + 1)));
}

}  // namespace

std::pair<std::string, std::string> webdataset_split(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = name.find('.', base);
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), lowercase(name.substr(dot + 1))};
}

bool tar_member_name_unsafe(const std::string& name) {
  if (name.empty() || name[0] == '/' || name[0] == '\\') return true;
  if (name.size() >= 2 && name[1] == ':') return true;  // "C:..." on Windows-made archives
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

TarShardSource::TarShardSource(std::vector<std::string> shards, SourceOptions options)
    : shards_(std::move(shards)), options_(options) {}

TarShardSource::~TarShardSource() { close_shard(); }

void TarShardSource::close_shard() {
  if (ar_) archive_read_free(ar_);
  ar_ = nullptr;
  opened_ = false;
  have_pending_ = false;
  corrupt_ = false;
}

bool TarShardSource::open_next_shard() {
  if (shard_ >= shards_.size()) return false;
  const std::string& path = shards_[shard_];
  // A shard that is missing or unreadable is the user's mistake (a wrong pattern): an error.
  // One that exists but is not a tar is bad data: counted, and the run goes on.
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    throw file_error(path, std::string("cannot open tar shard: ") + std::strerror(errno));
  }
  ar_ = archive_read_new();
  archive_read_support_format_tar(ar_);
  archive_read_support_filter_all(ar_);  // .tar.gz / .tgz shards too
  opened_ = true;
  if (archive_read_open_filename(ar_, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    corrupt_ = true;
    corrupt_detail_ = archive_error_string(ar_) ? archive_error_string(ar_) : "not a tar file";
    have_pending_ = false;
    return true;
  }
  have_pending_ = read_member();
  return true;
}

bool TarShardSource::read_member() {
  for (;;) {
    struct archive_entry* entry = nullptr;
    const int r = archive_read_next_header(ar_, &entry);
    if (r == ARCHIVE_EOF) return false;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      corrupt_ = true;
      corrupt_detail_ = archive_error_string(ar_) ? archive_error_string(ar_) : "unreadable header";
      return false;
    }
    // Directories, links, devices: nothing to read, and links are never followed.
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    const char* name = archive_entry_pathname(entry);
    pending_name_ = name ? name : "";
    pending_data_.clear();
    pending_too_big_ = false;
    const std::string ext = webdataset_split(pending_name_).second;
    const bool wanted = is_image_member(ext) || ext == "txt";
    const int64_t limit = ext == "txt" ? options_.max_caption_bytes : options_.max_image_bytes;
    pending_size_ = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
    if (!wanted || pending_size_ > limit) {
      pending_too_big_ = wanted;
      if (archive_read_data_skip(ar_) != ARCHIVE_OK) {
        corrupt_ = true;
        corrupt_detail_ = archive_error_string(ar_) ? archive_error_string(ar_) : "truncated member";
        return false;
      }
      return true;
    }
    uint8_t buf[1 << 16];
    for (;;) {
      const la_ssize_t n = archive_read_data(ar_, buf, sizeof(buf));
      if (n == 0) break;
      if (n < 0) {
        corrupt_ = true;
        corrupt_detail_ = "member " + pending_name_ + ": " +
                          (archive_error_string(ar_) ? archive_error_string(ar_) : "read failed");
        return false;
      }
      if (static_cast<int64_t>(pending_data_.size()) + n > limit) {
        pending_too_big_ = true;
        pending_data_.clear();
        pending_data_.shrink_to_fit();
        if (archive_read_data_skip(ar_) != ARCHIVE_OK) {
          corrupt_ = true;
          corrupt_detail_ = "truncated member " + pending_name_;
          return false;
        }
        break;
      }
      pending_data_.insert(pending_data_.end(), buf, buf + n);
    }
    return true;
  }
}

bool TarShardSource::next(RawSample& out) {
  for (;;) {
    if (!opened_) {
      if (!open_next_shard()) return false;
    }
    if (!have_pending_) {
      const bool was_corrupt = corrupt_;
      const std::string detail = corrupt_detail_;
      const std::string shard = shards_[shard_];
      close_shard();
      ++shard_;
      if (was_corrupt) {
        out = RawSample{};
        out.key = shard;
        out.reason = reason::tar_corrupt;
        out.detail = shard + ": corrupt or truncated tar (" + detail + "); the rest of the shard is skipped";
        return true;
      }
      continue;
    }
    out = RawSample{};
    const std::string key = webdataset_split(pending_name_).first;
    const std::string& shard = shards_[shard_];
    out.key = shard + ":" + key;
    bool unsafe = false;
    do {
      if (tar_member_name_unsafe(pending_name_)) unsafe = true;
      const std::string ext = webdataset_split(pending_name_).second;
      if (is_image_member(ext) && !out.has_image) {
        out.has_image = true;
        out.image_name = shard + ":" + pending_name_;
        out.image = std::move(pending_data_);
        if (pending_too_big_ && out.reason.empty()) {
          out.reason = reason::image_file_too_large;
          out.detail = out.image_name + ": image file over " +
                       std::to_string(options_.max_image_bytes) + " bytes";
        }
      } else if (ext == "txt" && !out.has_caption) {
        out.has_caption = true;
        out.captions_text.assign(pending_data_.begin(), pending_data_.end());
        if (pending_too_big_ && out.reason.empty()) {
          out.reason = reason::caption_too_long;
          out.detail = shard + ":" + pending_name_ + ": caption file over " +
                       std::to_string(options_.max_caption_bytes) + " bytes";
        }
      }
      pending_data_.clear();
      have_pending_ = read_member();
    } while (have_pending_ && webdataset_split(pending_name_).first == key);
    if (unsafe) {
      out.reason = reason::unsafe_member_name;
      out.detail = shard + ": member name '" + key + "' is absolute or contains '..'";
      out.image.clear();
    }
    return true;
  }
}

TarShardWriter::TarShardWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  ar_ = archive_write_new();
  archive_write_set_format_pax_restricted(ar_);
  archive_write_set_bytes_in_last_block(ar_, 1);
  if (archive_write_open_filename(ar_, tmp_.c_str()) != ARCHIVE_OK) {
    const std::string why = archive_error_string(ar_) ? archive_error_string(ar_) : "cannot create";
    archive_write_free(ar_);
    ar_ = nullptr;
    throw file_error(tmp_, "cannot create tar shard: " + why);
  }
}

TarShardWriter::~TarShardWriter() {
  if (ar_) {  // not closed: an exception is on its way; leave no half-written shard behind
    archive_write_free(ar_);
    std::remove(tmp_.c_str());
  }
}

void TarShardWriter::add(const std::string& name, const void* data, size_t size) {
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(size));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, 0, 0);  // reproducible shards
  const bool ok = archive_write_header(ar_, e) == ARCHIVE_OK &&
                  (size == 0 || archive_write_data(ar_, data, size) == static_cast<la_ssize_t>(size));
  archive_entry_free(e);
  if (!ok)
    throw file_error(tmp_, std::string("cannot write member ") + name + ": " +
                               (archive_error_string(ar_) ? archive_error_string(ar_) : "write failed"));
  ++members_;
  bytes_ += static_cast<int64_t>(size);
}

void TarShardWriter::close() {
  if (!ar_) return;
  const bool ok = archive_write_close(ar_) == ARCHIVE_OK;
  const std::string why = ok || !archive_error_string(ar_) ? "" : archive_error_string(ar_);
  archive_write_free(ar_);
  ar_ = nullptr;
  if (!ok) {
    std::remove(tmp_.c_str());
    throw file_error(tmp_, "cannot finish tar shard: " + why);
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) throw file_error(path_, "cannot rename shard into place");
}

}  // namespace dalle

#include "dalle/data/sample_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "dalle/data/filters.h"
#include "dalle/data/tar_shards.h"
#include "dalle/util/error.h"

namespace dalle {

namespace fs = std::filesystem;

namespace {

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_tar_name(const std::string& path) {
  const std::string p = lowercase(path);
  return ends_with(p, ".tar") || ends_with(p, ".tgz") || ends_with(p, ".tar.gz");
}

// Reads at most `limit` bytes of `path`; false (and nothing read) when the file is larger.
bool read_bounded(const std::string& path, int64_t limit, std::vector<uint8_t>& out, std::string& error) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    error = ec.message();
    return true;
  }
  if (static_cast<int64_t>(size) > limit) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open";
    return true;
  }
  out.resize(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(size))) {
    error = "read failed";
    out.clear();
  }
  return true;
}

// One image (or caption) of a folder or TSV, turned into a sample with bounded reads.
void load_file_sample(const std::string& image, const std::string& caption_file, const std::string* caption_text,
                      const SourceOptions& o, RawSample& out) {
  if (!image.empty()) {
    out.image_name = image;
    out.has_image = true;
    std::string error;
    if (!fs::is_regular_file(image)) {
      out.has_image = false;
    } else if (!read_bounded(image, o.max_image_bytes, out.image, error)) {
      out.reason = reason::image_file_too_large;
      out.detail = image + ": image file over " + std::to_string(o.max_image_bytes) + " bytes";
    } else if (!error.empty()) {
      out.reason = reason::image_undecodable;
      out.detail = image + ": " + error;
    }
  }
  if (caption_text) {
    out.has_caption = true;
    out.captions_text = *caption_text;
  } else if (!caption_file.empty()) {
    out.has_caption = true;
    std::vector<uint8_t> bytes;
    std::string error;
    if (!read_bounded(caption_file, o.max_caption_bytes, bytes, error)) {
      if (out.reason.empty()) {
        out.reason = reason::caption_too_long;
        out.detail = caption_file + ": caption file over " + std::to_string(o.max_caption_bytes) + " bytes";
      }
    } else {
      out.captions_text.assign(bytes.begin(), bytes.end());
    }
  }
}

class FolderSource : public SampleSource {
 public:
  FolderSource(const std::string& dir, SourceOptions o) : options_(o) {
    if (!fs::is_directory(dir)) throw file_error(dir, "not a folder");
    std::map<std::string, std::pair<std::vector<std::string>, std::string>> by_stem;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const fs::path& p = entry.path();
      const std::string ext = lowercase(p.extension().string());
      const std::string stem = (p.parent_path() / p.stem()).string();
      if (ext == ".txt") by_stem[stem].second = p.string();
      else if (is_sample_image_extension(ext)) by_stem[stem].first.push_back(p.string());
    }
    for (auto& [stem, files] : by_stem) {
      std::sort(files.first.begin(), files.first.end());
      if (files.first.empty()) items_.push_back({"", files.second, stem});
      for (const auto& image : files.first) items_.push_back({image, files.second, stem});
    }
  }
  bool next(RawSample& out) override {
    if (next_ >= items_.size()) return false;
    const Item& item = items_[next_++];
    out = RawSample{};
    out.key = item.image.empty() ? item.captions : item.image;
    load_file_sample(item.image, item.captions, nullptr, options_, out);
    return true;
  }
  int64_t size_hint() const override { return static_cast<int64_t>(items_.size()); }

 private:
  struct Item {
    std::string image, captions, stem;
  };
  SourceOptions options_;
  std::vector<Item> items_;
  size_t next_ = 0;
};

class TsvSource : public SampleSource {
 public:
  TsvSource(const std::string& path, SourceOptions o) : options_(o) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(path, "cannot open TSV file");
    const fs::path base = fs::path(path).parent_path();
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const size_t tab = line.find('\t');
      const std::string where = path + ":" + std::to_string(line_no);
      if (tab == std::string::npos) {
        rows_.push_back({"", "", where, true});
        continue;
      }
      std::string file = line.substr(0, tab);
      const std::string caption = line.substr(tab + 1);
      if (line_no == 1 && is_header(file)) continue;
      if (!file.empty() && fs::path(file).is_relative()) file = (base / file).string();
      // Consecutive rows of one image are one sample with several captions.
      if (!rows_.empty() && !rows_.back().malformed && rows_.back().image == file)
        rows_.back().captions += "\n" + caption;
      else
        rows_.push_back({file, caption, where, false});
    }
  }
  bool next(RawSample& out) override {
    if (next_ >= rows_.size()) return false;
    const Row& row = rows_[next_++];
    out = RawSample{};
    out.key = row.where;
    if (row.malformed) {
      out.reason = reason::tsv_malformed;
      out.detail = row.where + ": no tab between path and caption";
      return true;
    }
    load_file_sample(row.image, "", &row.captions, options_, out);
    if (out.captions_text.size() > static_cast<size_t>(options_.max_caption_bytes) && out.reason.empty()) {
      out.reason = reason::caption_too_long;
      out.detail = row.where + ": caption over " + std::to_string(options_.max_caption_bytes) + " bytes";
    }
    return true;
  }
  int64_t size_hint() const override { return static_cast<int64_t>(rows_.size()); }

 private:
  static bool is_header(std::string first) {
    first = lowercase(first);
    return first == "path" || first == "image" || first == "file" || first == "filename" ||
           first == "filepath" || first == "image_path";
  }
  struct Row {
    std::string image, captions, where;
    bool malformed;
  };
  SourceOptions options_;
  std::vector<Row> rows_;
  size_t next_ = 0;
};

void expand_into(const std::string& pattern, std::vector<std::string>& out, size_t limit) {
  const size_t open = pattern.find('{');
  if (open == std::string::npos) {
    if (pattern.find('}') != std::string::npos) throw Error(pattern + ": unbalanced '}' in shard pattern");
    out.push_back(pattern);
    if (out.size() > limit) throw Error(pattern + ": shard pattern expands to too many names");
    return;
  }
  size_t depth = 0, close = std::string::npos;
  std::vector<size_t> commas;
  for (size_t i = open; i < pattern.size(); ++i) {
    if (pattern[i] == '{') ++depth;
    else if (pattern[i] == '}' && --depth == 0) { close = i; break; }
    else if (pattern[i] == ',' && depth == 1) commas.push_back(i);
  }
  if (close == std::string::npos) throw Error(pattern + ": unbalanced '{' in shard pattern");
  const std::string prefix = pattern.substr(0, open);
  const std::string body = pattern.substr(open + 1, close - open - 1);
  const std::string rest = pattern.substr(close + 1);
  std::vector<std::string> alternatives;
  const size_t dots = body.find("..");
  if (commas.empty() && dots != std::string::npos) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    const auto all_digits = [](const std::string& s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    if (!all_digits(a) || !all_digits(b) || a.size() > 18 || b.size() > 18)
      throw Error(pattern + ": a range must be {FIRST..LAST} with non-negative integers");
    const long long lo = std::stoll(a), hi = std::stoll(b);
    if (hi < lo) throw Error(pattern + ": range {" + body + "} runs backwards");
    if (hi - lo >= static_cast<long long>(limit)) throw Error(pattern + ": shard pattern expands to too many names");
    const size_t width = a.size() > 1 && a[0] == '0' ? a.size() : 0;
    for (long long v = lo; v <= hi; ++v) {
      std::string s = std::to_string(v);
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      alternatives.push_back(s);
    }
  } else if (!commas.empty()) {
    size_t start = 0;
    for (size_t c : commas) {
      alternatives.push_back(body.substr(start, c - open - 1 - start));
      start = c - open;
    }
    alternatives.push_back(body.substr(start));
  } else {
    throw Error(pattern + ": '{" + body + "}' is neither a range {0..9} nor a list {a,b}");
  }
  for (const auto& alt : alternatives) expand_into(prefix + alt + rest, out, limit);
}

}  // namespace

std::vector<std::string> tar_shard_list(const std::string& spec) {
  std::vector<std::string> shards;
  if (fs::is_directory(spec)) {
    for (const auto& entry : fs::directory_iterator(spec))
      if (entry.is_regular_file() && is_tar_name(entry.path().string())) shards.push_back(entry.path().string());
    std::sort(shards.begin(), shards.end());
  } else {
    shards = expand_braces(spec);
  }
  if (shards.empty()) throw file_error(spec, "no tar shards found");
  return shards;
}

bool is_sample_image_extension(const std::string& ext) {
  const std::string e = lowercase(ext);
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".webp" || e == ".gif";
}

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  expand_into(pattern, out, 10'000'000);
  return out;
}

SourceFormat detect_source_format(const std::string& spec) {
  if (spec.find('{') != std::string::npos) return SourceFormat::tar;
  if (fs::is_directory(spec)) {
    bool images = false, tars = false;
    for (const auto& entry : fs::directory_iterator(spec)) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().string();
      images = images || is_sample_image_extension(entry.path().extension().string());
      tars = tars || is_tar_name(name);
    }
    return tars && !images ? SourceFormat::tar : SourceFormat::folder;
  }
  if (is_tar_name(spec)) return SourceFormat::tar;
  if (ends_with(lowercase(spec), ".tsv")) return SourceFormat::tsv;
  if (!fs::exists(spec)) throw file_error(spec, "no such file or folder");
  throw file_error(spec, "unknown input format (expected a folder, .tar shards or a {000..099} pattern, or a .tsv)");
}

const char* source_format_name(SourceFormat f) {
  switch (f) {
    case SourceFormat::folder: return "folder";
    case SourceFormat::tar: return "tar shards";
    case SourceFormat::tsv: return "tsv";
  }
  return "?";
}

std::unique_ptr<SampleSource> open_sample_source(const std::string& spec, const SourceOptions& options) {
  switch (detect_source_format(spec)) {
    case SourceFormat::folder: return std::make_unique<FolderSource>(spec, options);
    case SourceFormat::tar: return std::make_unique<TarShardSource>(tar_shard_list(spec), options);
    case SourceFormat::tsv: return std::make_unique<TsvSource>(spec, options);
  }
  throw file_error(spec, "unknown input format");
}

}  // namespace dalle

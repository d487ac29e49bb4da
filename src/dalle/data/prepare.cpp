#include "dalle/data/prepare.h"

#include <stb/stb_image_write.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>

#include "dalle/data/tar_shards.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/threads.h"

namespace dalle {

namespace fs = std::filesystem;

namespace {

void collect(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  std::vector<uint8_t> out;
  if (!stbi_write_jpg_to_func(collect, &out, image.width, image.height, 3, image.pixels.data(), quality))
    throw Error("JPEG encoding failed");
  return out;
}

Image shrink_to_max_side(const Image& image, int max_side) {
  const int longest = std::max(image.width, image.height);
  if (max_side <= 0 || longest <= max_side) return image;
  const double scale = static_cast<double>(max_side) / longest;
  const int w = std::max(1, static_cast<int>(std::lround(image.width * scale)));
  const int h = std::max(1, static_cast<int>(std::lround(image.height * scale)));
  return image_resize(image, w, h);
}

std::string shard_name(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%06lld.tar", static_cast<long long>(index));
  return buf;
}

std::string sample_key(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%09lld", static_cast<long long>(index));
  return buf;
}

// Our own earlier output in OUT: shard-NNNNNN.tar (and leftovers of an interrupted write).
bool is_our_shard(const std::string& name) {
  return name.size() >= 16 && name.compare(0, 6, "shard-") == 0 &&
         (name.compare(name.size() - 4, 4, ".tar") == 0 || name.compare(name.size() - 8, 8, ".tar.tmp") == 0);
}

struct Processed {
  FilterResult result;
  std::vector<uint8_t> encoded;
  std::string extension;
};

}  // namespace

nlohmann::json PrepareReport::to_json(const PrepareOptions& o) const {
  nlohmann::json j;
  j["seen"] = seen;
  j["kept"] = kept;
  j["dropped"] = nlohmann::json::object();
  for (const auto& [k, v] : dropped) j["dropped"][k] = v;
  j["captions"] = {{"seen", captions_seen}, {"kept", captions_kept}, {"dropped", nlohmann::json::object()}};
  for (const auto& [k, v] : captions_dropped) j["captions"]["dropped"][k] = v;
  j["utf8_policy"] = o.filters.utf8 == Utf8Policy::drop ? "drop" : "repair";
  j["utf8_repaired"] = utf8_repaired;
  j["shards"] = shards;
  j["bytes_written"] = bytes_written;
  j["seconds"] = std::round(seconds * 100) / 100;
  const FilterOptions& f = o.filters;
  j["options"] = {{"input", o.input},
                  {"format", source_format_name(detect_source_format(o.input))},
                  {"max_side", o.max_side},
                  {"shard_size", o.shard_size},
                  {"image_format", o.image_format},
                  {"min_words", f.min_words},
                  {"max_caption_bytes", f.max_caption_bytes},
                  {"english", f.english},
                  {"boilerplate", f.boilerplate},
                  {"max_boilerplate_fraction", f.max_boilerplate_fraction},
                  {"min_aspect", f.min_aspect},
                  {"max_aspect", f.max_aspect},
                  {"min_side", f.min_side},
                  {"max_pixels", f.max_pixels},
                  {"dedup", f.dedup}};
  return j;
}

PrepareReport prepare_dataset(const PrepareOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  if (o.shard_size <= 0) throw Error("shard size must be positive");
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<SampleSource> source = open_sample_source(o.input, o.source);
  // Old shards in OUT are removed below: OUT must not be where the input lives.
  const fs::path input_dir = fs::is_directory(o.input) ? fs::path(o.input) : fs::path(o.input).parent_path();
  std::error_code ec;
  if (fs::exists(o.output) && fs::equivalent(input_dir.empty() ? "." : input_dir, o.output, ec))
    throw file_error(o.output, "the output folder is the input's folder; pick another -o");
  make_dirs(o.output);
  for (const auto& entry : fs::directory_iterator(o.output))
    if (entry.is_regular_file() && is_our_shard(entry.path().filename().string())) fs::remove(entry.path());

  int64_t total = source->size_hint();
  if (o.limit >= 0 && (total < 0 || total > o.limit)) total = o.limit;
  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  const size_t batch = static_cast<size_t>(32 * threads);
  FilterOptions filters = o.filters;
  filters.decode = true;

  PrepareReport report;
  std::unordered_set<ContentHash, ContentHashHasher> hashes;
  std::unique_ptr<TarShardWriter> writer;
  int64_t in_shard = 0;
  std::vector<RawSample> raw;
  std::vector<Processed> done;
  bool more = true;
  while (more) {
    raw.clear();
    while (raw.size() < batch && (o.limit < 0 || report.seen + static_cast<int64_t>(raw.size()) < o.limit)) {
      RawSample s;
      if (!source->next(s)) {
        more = false;
        break;
      }
      raw.push_back(std::move(s));
    }
    if (o.limit >= 0 && report.seen + static_cast<int64_t>(raw.size()) >= o.limit) more = false;
    if (raw.empty()) break;

    done.assign(raw.size(), Processed{});
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next.fetch_add(1); i < raw.size(); i = next.fetch_add(1)) {
        Processed& p = done[i];
        p.result = filter_sample(raw[i], filters);
        raw[i].image.clear();
        raw[i].image.shrink_to_fit();
        if (!p.result.reason.empty()) continue;
        try {
          const Image small = shrink_to_max_side(p.result.image, o.max_side);
          const bool png = o.image_format == "png" || (o.image_format == "auto" && p.result.image_format == "png");
          p.encoded = png ? image_encode_png(small) : encode_jpeg(small, o.jpeg_quality);
          p.extension = png ? "png" : "jpg";
        } catch (const Error& e) {
          p.result.reason = reason::image_undecodable;
          p.result.detail = e.what();
        }
        p.result.image = Image{};
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();

    // In input order, so duplicates and shard contents never depend on the thread count.
    for (size_t i = 0; i < raw.size(); ++i) {
      Processed& p = done[i];
      FilterResult& r = p.result;
      ++report.seen;
      report.captions_seen += r.captions_seen;
      report.utf8_repaired += r.utf8_repaired;
      for (const auto& [k, v] : r.caption_drops) report.captions_dropped[k] += v;
      if (r.reason.empty() && filters.dedup && !hashes.insert(r.hash).second) {
        r.reason = reason::duplicate_image;
        r.detail = raw[i].image_name + ": same bytes as an earlier image";
      }
      if (!r.reason.empty()) {
        ++report.dropped[r.reason];
        auto& ex = report.examples[r.reason];
        if (ex.size() < 3) ex.push_back(r.detail.empty() ? raw[i].key : r.detail);
        continue;
      }
      if (!writer) {
        writer = std::make_unique<TarShardWriter>(path_join(o.output, shard_name(report.shards)));
        in_shard = 0;
      }
      const std::string key = sample_key(report.kept);
      std::string captions;
      for (const auto& c : r.captions) captions += c + "\n";
      writer->add(key + "." + p.extension, p.encoded.data(), p.encoded.size());
      writer->add(key + ".txt", captions);
      writer->add(key + ".json", nlohmann::json{{"source", raw[i].key}}.dump() + "\n");
      ++report.kept;
      report.captions_kept += static_cast<int64_t>(r.captions.size());
      if (++in_shard == o.shard_size) {
        report.bytes_written += writer->bytes();
        writer->close();
        writer.reset();
        ++report.shards;
      }
    }
    if (progress) progress(report.seen, total);
  }
  if (writer) {
    report.bytes_written += writer->bytes();
    writer->close();
    ++report.shards;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomic(path_join(o.output, "report.json"), report.to_json(o).dump(2) + "\n");
  return report;
}

}  // namespace dalle

#include "dalle/data/image_folder.h"

#include "dalle/util/torch_api.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "dalle/data/filters.h"
#include "dalle/data/sample_source.h"
#include "dalle/io/image.h"
#include "dalle/util/error.h"
#include "dalle/util/threads.h"

namespace dalle {

namespace fs = std::filesystem;

namespace {

bool is_image_extension(std::string ext) {
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// Trimmed, non-empty lines.
std::vector<std::string> caption_lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const size_t a = text.find_first_not_of(" \t\r", start);
    if (a != std::string::npos && a < end) {
      const size_t b = text.find_last_not_of(" \t\r", end - 1);
      lines.push_back(text.substr(a, b - a + 1));
    }
    start = end + 1;
  }
  return lines;
}

}  // namespace

std::vector<ImageCaptionPaths> image_folder_list(const std::string& dir) {
  if (!fs::is_directory(dir)) throw file_error(dir, "not a folder of images");
  std::vector<ImageCaptionPaths> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file() || !is_image_extension(entry.path().extension().string())) continue;
    fs::path txt = entry.path();
    txt.replace_extension(".txt");
    out.push_back({entry.path().string(), fs::exists(txt) ? txt.string() : ""});
  }
  std::sort(out.begin(), out.end(),
            [](const ImageCaptionPaths& a, const ImageCaptionPaths& b) { return a.image < b.image; });
  return out;
}

std::vector<std::string> read_caption_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(path, "cannot open caption file");
  std::ostringstream text;
  text << in.rdbuf();
  return caption_lines_of(text.str());
}

namespace {

// Decodes n samples on `threads` workers into one [n, size, size, 3] tensor. `load(i, captions)`
// fills the captions of sample i and returns its square image; a throw skips the sample (the
// first few are reported). `name(i)` is the path recorded for a kept sample.
ImageSet load_in_parallel(int64_t n, int size, int threads, const std::string& source,
                          const std::function<Image(int64_t, std::vector<std::string>&)>& load,
                          const std::function<std::string(int64_t)>& name,
                          const std::function<void(int64_t, int64_t)>& progress) {
  torch::Tensor all = torch::empty({n, size, size, 3}, torch::kUInt8);
  std::vector<std::vector<std::string>> captions(static_cast<size_t>(n));
  std::vector<char> ok(static_cast<size_t>(n), 0);
  std::atomic<int64_t> next{0}, done{0};
  std::mutex log_mutex;
  int64_t warned = 0;
  auto worker = [&] {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        const Image img = load(i, captions[static_cast<size_t>(i)]);
        std::memcpy(all[i].data_ptr<uint8_t>(), img.pixels.data(), img.pixels.size());
        ok[static_cast<size_t>(i)] = 1;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(log_mutex);
        if (warned++ < 5) std::fprintf(stderr, "warning: skipping %s\n", e.what());
      }
      ++done;
    }
  };
  std::vector<std::thread> pool;
  const int t = threads > 0 ? threads : default_thread_count();
  for (int k = 0; k < t; ++k) pool.emplace_back(worker);
  while (progress && done < n) {
    progress(done, n);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& th : pool) th.join();
  if (progress) progress(n, n);

  ImageSet set;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[static_cast<size_t>(i)]) continue;
    keep.push_back(i);
    set.captions.push_back(std::move(captions[static_cast<size_t>(i)]));
    set.paths.push_back(name(i));
  }
  set.skipped = n - static_cast<int64_t>(keep.size());
  set.images = keep.size() == static_cast<size_t>(n) ? all : all.index_select(0, torch::tensor(keep));
  if (set.images.size(0) == 0) throw file_error(source, "no usable images found");
  return set;
}

// Tar shards and TSV files: read the samples' bytes in order, then decode in parallel.
ImageSet image_set_load_source(const std::string& spec, int size, bool require_captions, int threads,
                               int64_t limit, const std::function<void(int64_t, int64_t)>& progress) {
  std::unique_ptr<SampleSource> source = open_sample_source(spec);
  std::vector<RawSample> samples;
  RawSample s;
  while ((limit < 0 || static_cast<int64_t>(samples.size()) < limit) && source->next(s)) samples.push_back(std::move(s));
  auto load = [&](int64_t i, std::vector<std::string>& captions) {
    RawSample& sample = samples[static_cast<size_t>(i)];
    const std::vector<uint8_t> bytes = std::move(sample.image);  // freed once decoded or refused
    if (!sample.reason.empty()) throw Error(sample.detail);
    if (!sample.has_image) throw Error(sample.key + ": caption without an image");
    captions = caption_lines_of(sample.captions_text);
    if (require_captions && captions.empty()) throw Error(sample.image_name + ": no caption");
    const std::string truncated = image_truncation_problem(bytes.data(), bytes.size());
    if (!truncated.empty()) throw Error(sample.image_name + ": " + truncated);
    return image_square(image_decode_on_white(bytes.data(), bytes.size(), sample.image_name, int64_t(1) << 26), size);
  };
  return load_in_parallel(static_cast<int64_t>(samples.size()), size, threads, spec, load,
                          [&](int64_t i) { return samples[static_cast<size_t>(i)].image_name; }, progress);
}

}  // namespace

ImageSet image_set_load(const std::string& dir, int size, bool require_captions, int threads,
                        int64_t limit, const std::function<void(int64_t, int64_t)>& progress) {
  if (detect_source_format(dir) != SourceFormat::folder)
    return image_set_load_source(dir, size, require_captions, threads, limit, progress);
  std::vector<ImageCaptionPaths> files = image_folder_list(dir);
  if (limit >= 0 && static_cast<int64_t>(files.size()) > limit) files.resize(static_cast<size_t>(limit));
  auto load = [&](int64_t i, std::vector<std::string>& captions) {
    const auto& f = files[static_cast<size_t>(i)];
    if (!f.captions.empty()) captions = read_caption_lines(f.captions);
    if (require_captions && captions.empty()) throw file_error(f.image, "no caption (.txt missing or empty)");
    return image_square(image_load(f.image), size);
  };
  return load_in_parallel(static_cast<int64_t>(files.size()), size, threads, dir, load,
                          [&](int64_t i) { return files[static_cast<size_t>(i)].image; }, progress);
}

}  // namespace dalle

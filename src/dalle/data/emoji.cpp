#include "dalle/data/emoji.h"

#include <archive.h>
#include <archive_entry.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "dalle/data/filters.h"
#include "dalle/io/image.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "dalle/util/threads.h"

namespace dalle {

namespace fs = std::filesystem;

namespace {

// Calls `use(name, bytes)` for every regular member of `tgz` for which `want(name)` is true.
void tgz_for_each(const std::string& tgz, const std::function<bool(const std::string&)>& want,
                  const std::function<void(const std::string&, std::vector<uint8_t>&&)>& use) {
  struct archive* ar = archive_read_new();
  archive_read_support_format_tar(ar);
  archive_read_support_filter_all(ar);
  if (archive_read_open_filename(ar, tgz.c_str(), 1 << 16) != ARCHIVE_OK) {
    const std::string why = archive_error_string(ar) ? archive_error_string(ar) : "cannot open";
    archive_read_free(ar);
    throw file_error(tgz, "cannot open package: " + why);
  }
  struct archive_entry* entry = nullptr;
  for (;;) {
    const int r = archive_read_next_header(ar, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      const std::string why = archive_error_string(ar) ? archive_error_string(ar) : "corrupt";
      archive_read_free(ar);
      throw file_error(tgz, "corrupt package: " + why);
    }
    const char* name = archive_entry_pathname(entry);
    if (archive_entry_filetype(entry) != AE_IFREG || !name || !want(name)) continue;
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(ar, buf, sizeof(buf))) > 0) bytes.insert(bytes.end(), buf, buf + n);
    if (n < 0) {
      const std::string why = archive_error_string(ar) ? archive_error_string(ar) : "read failed";
      archive_read_free(ar);
      throw file_error(tgz, std::string("member ") + name + ": " + why);
    }
    use(name, std::move(bytes));
  }
  archive_read_free(ar);
}

nlohmann::json tgz_json(const std::string& tgz, const std::string& member) {
  nlohmann::json j;
  bool found = false;
  tgz_for_each(tgz, [&](const std::string& n) { return n == member; },
               [&](const std::string&, std::vector<uint8_t>&& bytes) {
                 try {
                   j = nlohmann::json::parse(bytes.begin(), bytes.end());
                 } catch (const nlohmann::json::exception& e) {
                   throw file_error(tgz, member + ": invalid JSON (" + e.what() + ")");
                 }
                 found = true;
               });
  if (!found) throw file_error(tgz, "no " + member + " in the package");
  return j;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<int> version_numbers(const std::string& v) {
  std::vector<int> out;
  std::stringstream ss(v);
  std::string part;
  while (std::getline(ss, part, '.')) {
    try {
      out.push_back(std::stoi(part));
    } catch (...) {
      return {};
    }
  }
  return out;
}

std::string find_cached(const std::string& package, const std::string& version, const std::string& cache) {
  if (!fs::is_directory(cache)) return "";
  const std::vector<int> want = version_numbers(version);
  std::string best;
  std::vector<int> best_v;
  for (const auto& entry : fs::directory_iterator(cache)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= package.size() + 5 || name.compare(0, package.size() + 1, package + "-") != 0 ||
        name.compare(name.size() - 4, 4, ".tgz") != 0)
      continue;
    const std::vector<int> v = version_numbers(name.substr(package.size() + 1, name.size() - package.size() - 5));
    if (v.size() != 3 || want.empty() || want.size() > 3) continue;
    if (!std::equal(want.begin(), want.end(), v.begin())) continue;
    if (best.empty() || v > best_v) {
      best = entry.path().string();
      best_v = v;
    }
  }
  return best;
}

// emojibase hexcodes and file names differ in whether they spell the FE0F variation selector.
std::string emoji_key(std::string hex) {
  for (auto& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t p; (p = hex.find("-FE0F")) != std::string::npos;) hex.erase(p, 5);
  return hex;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

struct Label {
  std::string label;
  std::vector<std::string> tags;
};

struct Job {
  size_t pack;
  std::string stem;  // "google-1f34e"
  std::vector<uint8_t> png;
  const Label* label;
};

}  // namespace

std::vector<EmojiPack> emoji_default_packs() {
  return {
      {"google", "emoji-datasource-google", "16", "Apache-2.0",
       "Noto Emoji images by Google, Apache License 2.0 (https://github.com/googlefonts/noto-emoji/blob/main/LICENSE), "
       "packaged by emoji-datasource (MIT, Cal Henderson)"},
      {"twitter", "emoji-datasource-twitter", "16", "CC-BY-4.0",
       "Twemoji images by Twitter, Inc. and other contributors, Creative Commons Attribution 4.0 "
       "(https://creativecommons.org/licenses/by/4.0/; https://github.com/jdecked/twemoji), packaged by "
       "emoji-datasource (MIT, Cal Henderson)"},
  };
}

std::string emoji_default_cache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "dalle" / "npm").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "dalle" / "npm").string();
  return (fs::temp_directory_path() / "dalle-npm-cache").string();
}

std::string npm_package_tgz(const std::string& package, const std::string& version, const std::string& cache,
                            bool fetch) {
  std::string found = find_cached(package, version, cache);
  if (!found.empty()) return found;
  const std::string by_hand = "npm pack " + package + "@" + version + " --pack-destination " + shell_quote(cache);
  if (!fetch) throw file_error(cache, "no " + package + "-" + version + ".x.tgz here (fetching is off); run: " + by_hand);
  make_dirs(cache);
  if (std::system("command -v npm >/dev/null 2>&1") != 0)
    throw Error("npm not found: install Node.js/npm, or put " + package + "-" + version + ".x.tgz into " + cache);
  std::fprintf(stderr, "data emoji: npm pack %s@%s\n", package.c_str(), version.c_str());
  const std::string cmd = "npm pack --silent " + shell_quote(package + "@" + version) + " --pack-destination " +
                          shell_quote(cache) + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw Error("cannot run npm");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != 0) throw Error("`" + by_hand + "` failed: " + out);
  found = find_cached(package, version, cache);
  if (found.empty()) throw Error("`" + by_hand + "` did not leave " + package + "-" + version + ".x.tgz in " + cache);
  return found;
}

std::vector<std::string> emoji_captions(const std::string& raw_label, const std::vector<std::string>& tags) {
  std::string label = raw_label;
  std::string with_article;
  if (starts_with(label, "flag: ")) {
    label = "flag of " + label.substr(6);
    with_article = "the " + label;
  } else {
    for (size_t p; (p = label.find(": ")) != std::string::npos;) label.replace(p, 2, ", ");
    const unsigned char first = label.empty() ? 'x' : static_cast<unsigned char>(label[0]);
    const std::string first_word = label.substr(0, label.find_first_of(" ,"));
    const bool plural = first_word.size() > 3 && first_word.back() == 's' && first_word[first_word.size() - 2] != 's';
    if (std::isupper(first) || std::isdigit(first) || first >= 0x80 || plural || first_word == "people")
      with_article = label;
    else
      with_article = (std::string("aeiou").find(static_cast<char>(first)) != std::string::npos ? "an " : "a ") + label;
  }
  std::vector<std::string> out = {label};
  if (with_article != label) out.push_back(with_article);
  out.push_back("an emoji of " + with_article);
  std::string tagged = label;
  int added = 0;
  const std::string padded = " " + label + " ";
  for (const auto& t : tags) {
    if (added == 4 || t.empty() || padded.find(" " + t + " ") != std::string::npos ||
        padded.find(" " + t + ",") != std::string::npos)
      continue;
    tagged += ", " + t;
    ++added;
  }
  if (added > 0) out.push_back(tagged);
  return out;
}

nlohmann::json EmojiReport::to_json() const {
  nlohmann::json j;
  j["images"] = written;
  j["labels"] = {{"package", "emojibase-data"}, {"version", labels_version}, {"license", "MIT"}, {"entries", labels}};
  j["packs"] = nlohmann::json::array();
  for (const auto& p : packs)
    j["packs"].push_back({{"name", p.pack.name},
                          {"package", p.pack.package},
                          {"version", p.resolved_version},
                          {"license", p.pack.license},
                          {"attribution", p.pack.attribution},
                          {"images_in_package", p.images},
                          {"written", p.written},
                          {"no_label", p.no_label},
                          {"undecodable", p.undecodable}});
  return j;
}

EmojiReport emoji_build(const EmojiOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  const std::string cache = o.cache.empty() ? emoji_default_cache() : o.cache;
  EmojiReport report;

  // Labels: English emojibase entries, skin-tone variants included.
  const std::string labels_tgz = npm_package_tgz(o.labels_package, o.labels_version, cache, o.fetch);
  report.labels_version = tgz_json(labels_tgz, "package/package.json").value("version", "");
  const nlohmann::json data = tgz_json(labels_tgz, "package/en/data.json");
  if (!data.is_array()) throw file_error(labels_tgz, "package/en/data.json is not a list");
  std::map<std::string, Label> labels;
  for (const auto& e : data) {
    if (!e.is_object() || !e.contains("hexcode") || !e.contains("label")) continue;
    Label l{e["label"].get<std::string>(), e.value("tags", std::vector<std::string>{})};
    if (o.skins && e.contains("skins") && e["skins"].is_array())
      for (const auto& s : e["skins"])
        if (s.is_object() && s.contains("hexcode") && s.contains("label"))
          labels[emoji_key(s["hexcode"].get<std::string>())] = {s["label"].get<std::string>(), l.tags};
    labels[emoji_key(e["hexcode"].get<std::string>())] = std::move(l);
  }
  report.labels = static_cast<int64_t>(labels.size());

  // Images: package/img/VENDOR/64/HEX.png of each pack.
  const std::vector<EmojiPack> all = emoji_default_packs();
  std::vector<Job> jobs;
  for (const auto& name : o.packs) {
    auto it = std::find_if(all.begin(), all.end(), [&](const EmojiPack& p) { return p.name == name; });
    if (it == all.end()) throw Error("unknown emoji pack '" + name + "' (known: google, twitter)");
    EmojiPackReport pr;
    pr.pack = *it;
    const std::string tgz = npm_package_tgz(it->package, it->version, cache, o.fetch);
    pr.resolved_version = tgz_json(tgz, "package/package.json").value("version", "");
    const std::string dir = "package/img/" + it->name + "/64/";
    const size_t pack_index = report.packs.size();
    tgz_for_each(
        tgz,
        [&](const std::string& n) {
          return starts_with(n, dir) && n.size() > dir.size() + 4 && n.compare(n.size() - 4, 4, ".png") == 0 &&
                 n.find('/', dir.size()) == std::string::npos;
        },
        [&](const std::string& n, std::vector<uint8_t>&& bytes) {
          ++pr.images;
          const std::string hex = n.substr(dir.size(), n.size() - dir.size() - 4);
          auto label = labels.find(emoji_key(hex));
          if (label == labels.end()) {
            ++pr.no_label;
            return;
          }
          std::string safe_hex;
          for (const char c : hex)
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') safe_hex += c;
          jobs.push_back({pack_index, it->name + "-" + safe_hex, std::move(bytes), &label->second});
        });
    report.packs.push_back(pr);
  }

  make_dirs(o.output);
  std::vector<char> ok(jobs.size(), 0);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      const Job& job = jobs[i];
      try {
        const Image img = image_decode_on_white(job.png.data(), job.png.size(), job.stem + ".png", 1 << 20);
        const std::vector<uint8_t> png = image_encode_png(img);
        std::ofstream(path_join(o.output, job.stem + ".png"), std::ios::binary)
            .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
        std::string text;
        for (const auto& c : emoji_captions(job.label->label, job.label->tags)) text += c + "\n";
        std::ofstream(path_join(o.output, job.stem + ".txt"), std::ios::binary) << text;
        ok[i] = 1;
      } catch (const Error&) {
      }
      ++done;
    }
  };
  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  while (progress && done < static_cast<int64_t>(jobs.size())) {
    progress(done, static_cast<int64_t>(jobs.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : pool) t.join();
  if (progress) progress(static_cast<int64_t>(jobs.size()), static_cast<int64_t>(jobs.size()));
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto& pr = report.packs[jobs[i].pack];
    if (ok[i]) ++pr.written, ++report.written;
    else ++pr.undecodable;
  }

  std::string licenses =
      "# Licences of this dataset\n\n"
      "Built by `dalle data emoji` from npm packages. Captions come from the English labels and tags of\n"
      "emojibase-data " + report.labels_version + " (MIT, https://github.com/milesj/emojibase).\n\n";
  for (const auto& p : report.packs)
    licenses += "- `" + p.pack.name + "-*.png`: " + p.pack.package + " " + p.resolved_version + ": **" +
                p.pack.license + "**. " + p.pack.attribution + ". " + std::to_string(p.written) + " images.\n";
  licenses += "\nImages were converted to RGB on a white background; no other change was made.\n";
  write_file_atomic(path_join(o.output, "LICENSES.md"), licenses);
  write_file_atomic(path_join(o.output, "report.json"), report.to_json().dump(2) + "\n");
  return report;
}

}  // namespace dalle

#include "dalle/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) words.push_back(current), current.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80 || c == '\'') {
      current.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
      if (!std::isspace(c) && c != 0) words.emplace_back(1, static_cast<char>(c));
    }
  }
  flush();
  return words;
}

Tokenizer Tokenizer::train(const std::vector<std::string>& captions, int max_vocab) {
  if (max_vocab < 2) throw Error("tokenizer: vocabulary size must be at least 2");
  std::map<std::string, int64_t> counts;
  for (const auto& c : captions)
    for (const auto& w : split_words(c)) ++counts[w];
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  Tokenizer tok;
  tok.words_.push_back("<unk>");
  for (const auto& [word, count] : sorted) {
    if (static_cast<int>(tok.words_.size()) >= max_vocab) break;
    tok.words_.push_back(word);
  }
  for (size_t i = 0; i < tok.words_.size(); ++i) tok.index_[tok.words_[i]] = static_cast<int>(i);
  return tok;
}

Tokenizer Tokenizer::load(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("invalid tokenizer JSON: ") + e.what());
  }
  if (!j.is_object() || j.value("type", "") != "word" || !j.contains("vocab") ||
      !j["vocab"].is_array())
    throw file_error(path, "not a dalle word tokenizer (needs \"type\": \"word\" and \"vocab\")");
  Tokenizer tok;
  for (const auto& w : j["vocab"]) {
    if (!w.is_string()) throw file_error(path, "vocab entry " + std::to_string(tok.words_.size()) + " is not a string");
    const std::string word = w.get<std::string>();
    if (tok.index_.count(word)) throw file_error(path, "duplicate vocab entry '" + word + "'");
    tok.index_[word] = static_cast<int>(tok.words_.size());
    tok.words_.push_back(word);
  }
  if (tok.words_.empty() || tok.words_[0] != "<unk>")
    throw file_error(path, "vocab must start with <unk>");
  return tok;
}

void Tokenizer::save(const std::string& path) const {
  nlohmann::json j = {{"type", "word"}, {"version", 1}, {"lowercase", true}, {"vocab", words_}};
  write_file_atomic(path, j.dump(1) + "\n");
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  for (const auto& w : split_words(text)) {
    auto it = index_.find(w);
    ids.push_back(it == index_.end() ? 0 : it->second);
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) continue;  // pad ids and out-of-range ids print nothing
    if (!out.empty()) out.push_back(' ');
    out += words_[static_cast<size_t>(id)];
  }
  return out;
}

std::vector<int64_t> pad_text(const std::vector<int>& ids, int text_len, int text_vocab) {
  std::vector<int64_t> out(static_cast<size_t>(text_len));
  for (int i = 0; i < text_len; ++i)
    out[static_cast<size_t>(i)] = i < static_cast<int>(ids.size()) ? ids[static_cast<size_t>(i)]
                                                                   : text_vocab + i;
  return out;
}

}  // namespace dalle

#include "dalle/text/tokenizer_files.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <unordered_map>

#include "dalle/text/byte_level.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "dalle-bpe";

json parse_json(const std::string& path, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    const size_t at = std::min<size_t>(e.byte, text.size());
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at ? at - 1 : 0), '\n');
    throw file_error(path, "line " + std::to_string(line) + ": not valid JSON (" + e.what() + ")");
  }
}

std::string token_bytes(const std::string& path, const std::string& where, const std::string& text) {
  auto bytes = byte_level_decode(text);
  if (!bytes) throw file_error(path, where + ": token '" + text + "' has a character outside the byte-level alphabet");
  if (bytes->empty()) throw file_error(path, where + ": empty token");
  return *bytes;
}

// Splits "A B" into its two tokens (tokens never contain a space in the byte-level alphabet).
bool split_merge(const std::string& line, std::string& a, std::string& b) {
  const size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
    return false;
  a = line.substr(0, sp);
  b = line.substr(sp + 1);
  return true;
}

// Builds the vocabulary from (text -> id) and checks the ids are 0..n-1 without gaps.
BpeVocab vocab_from_map(const std::string& path, const std::string& what,
                        const std::vector<std::pair<std::string, int64_t>>& entries) {
  BpeVocab v;
  v.tokens.resize(entries.size());
  std::vector<bool> seen(entries.size(), false);
  for (const auto& [text, id] : entries) {
    if (id < 0 || id >= static_cast<int64_t>(entries.size()))
      throw file_error(path, what + ": token '" + text + "' has id " + std::to_string(id) + ", outside 0.." +
                                 std::to_string(entries.size() - 1) + " (ids must be contiguous)");
    if (seen[static_cast<size_t>(id)])
      throw file_error(path, what + ": id " + std::to_string(id) + " is used by more than one token");
    seen[static_cast<size_t>(id)] = true;
    v.tokens[static_cast<size_t>(id)] = token_bytes(path, what + " '" + text + "'", text);
  }
  return v;
}

// Adds one merge given as its two token texts; `where` locates it in the file for errors.
void add_merge(const std::string& path, const std::string& where, BpeVocab& v,
               const std::unordered_map<std::string, int>& ids, const std::string& a, const std::string& b) {
  const auto ia = ids.find(a), ib = ids.find(b);
  if (ia == ids.end()) throw file_error(path, where + ": '" + a + "' is not in the vocabulary");
  if (ib == ids.end()) throw file_error(path, where + ": '" + b + "' is not in the vocabulary");
  if (ids.find(a + b) == ids.end())
    throw file_error(path, where + ": the merge makes '" + a + b + "', which is not in the vocabulary");
  v.merges.emplace_back(ia->second, ib->second);
}

std::unordered_map<std::string, int> ids_by_text(const std::vector<std::pair<std::string, int64_t>>& entries) {
  std::unordered_map<std::string, int> ids;
  for (const auto& [text, id] : entries) ids.emplace(text, static_cast<int>(id));
  return ids;
}

// GPT-2: encoder.json (token -> id) and vocab.bpe ("#version" line, then "A B" per merge).
TokenizerSpec read_gpt2(const std::string& dir) {
  const std::string enc_path = path_join(dir, "encoder.json"), bpe_path = path_join(dir, "vocab.bpe");
  const json enc = parse_json(enc_path, read_file_text(enc_path));
  if (!enc.is_object() || enc.empty()) throw file_error(enc_path, "expected a JSON object of token -> id");
  std::vector<std::pair<std::string, int64_t>> entries;
  for (const auto& [text, id] : enc.items()) {
    if (!id.is_number_integer()) throw file_error(enc_path, "token '" + text + "': id is not an integer");
    entries.emplace_back(text, id.get<int64_t>());
  }
  TokenizerSpec spec;
  spec.vocab = vocab_from_map(enc_path, "encoder.json", entries);
  const auto ids = ids_by_text(entries);
  std::istringstream in(read_file_text(bpe_path));
  std::string line, a, b;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::string where = "line " + std::to_string(lineno);
    if (!split_merge(line, a, b)) throw file_error(bpe_path, where + ": expected two tokens separated by one space, got '" + line + "'");
    add_merge(bpe_path, where, spec.vocab, ids, a, b);
  }
  if (spec.vocab.merges.empty()) throw file_error(bpe_path, "no merges");
  if (ids.count("<|endoftext|>")) spec.special_tokens.push_back("<|endoftext|>");
  return spec;
}

void read_hf_normalizer(const std::string& path, const json& n, TextNormalization& out) {
  if (n.is_null()) return;
  const std::string type = n.value("type", "");
  if (type == "NFC") {
    out.nfc = true;
  } else if (type == "Lowercase") {
    out.lowercase = true;
  } else if (type == "Sequence") {
    for (const json& x : n.at("normalizers")) read_hf_normalizer(path, x, out);
  } else {
    throw file_error(path, "normalizer '" + type + "' is not supported (only NFC and Lowercase)");
  }
}

void read_hf_pre_tokenizer(const std::string& path, const json& p, TokenizerSpec& spec) {
  const std::string type = p.is_object() ? p.value("type", "") : "";
  if (type == "Sequence" && p.at("pretokenizers").size() == 1)
    return read_hf_pre_tokenizer(path, p.at("pretokenizers")[0], spec);
  if (type != "ByteLevel" || !p.value("use_regex", true))
    throw file_error(path, "pre_tokenizer '" + (type.empty() ? std::string("none") : type) +
                               "' is not supported: only byte-level BPE with GPT-2's split (ByteLevel, use_regex)");
  spec.add_prefix_space = p.value("add_prefix_space", false);
}

TokenizerSpec read_hugging_face(const std::string& path, const json& j) {
  const json& model = j.at("model");
  if (model.value("type", "BPE") != "BPE")
    throw file_error(path, "model type '" + model.value("type", "") + "' is not supported (only BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      throw file_error(path, std::string("model.") + key + " is not supported by byte-level BPE");
  if (model.value("ignore_merges", false)) throw file_error(path, "model.ignore_merges is not supported");
  TokenizerSpec spec;
  read_hf_pre_tokenizer(path, j.value("pre_tokenizer", json()), spec);
  read_hf_normalizer(path, j.value("normalizer", json()), spec.normalization);
  // Added tokens are stored literally, not in the byte-level alphabet: they take their ids with
  // their bytes; model.vocab gives every other token.
  std::vector<std::string> added;
  std::vector<std::pair<std::string, int64_t>> all;
  for (const json& t : j.value("added_tokens", json::array())) {
    added.push_back(t.at("content").get<std::string>());
    all.emplace_back(byte_level_encode(added.back()), t.at("id").get<int64_t>());
  }
  std::vector<std::pair<std::string, int64_t>> plain;
  for (const auto& [text, id] : model.at("vocab").items()) {
    if (!id.is_number_integer()) throw file_error(path, "model.vocab '" + text + "': id is not an integer");
    if (std::find(added.begin(), added.end(), text) == added.end()) plain.emplace_back(text, id.get<int64_t>());
  }
  all.insert(all.end(), plain.begin(), plain.end());
  spec.vocab = vocab_from_map(path, "model.vocab", all);
  const auto ids = ids_by_text(plain);
  const json& merges = model.at("merges");
  std::string a, b;
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    if (m.is_string()) {
      if (!split_merge(m.get<std::string>(), a, b))
        throw file_error(path, where + ": expected two tokens separated by one space");
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      throw file_error(path, where + ": expected \"A B\" or [\"A\", \"B\"]");
    }
    add_merge(path, where, spec.vocab, ids, a, b);
  }
  spec.special_tokens = added;
  return spec;
}

TokenizerSpec read_ours(const std::string& path, const json& j) {
  if (j.value("version", 0) != 1)
    throw file_error(path, "tokenizer format version " + j.value("version", json()).dump() + " is not supported (expected 1)");
  if (j.value("pre_tokenizer", "gpt2") != "gpt2")
    throw file_error(path, "pre_tokenizer '" + j.value("pre_tokenizer", "") + "' is not supported (expected gpt2)");
  TokenizerSpec spec;
  const json norm = j.value("normalizer", json::object());
  spec.normalization = {norm.value("nfc", false), norm.value("lowercase", false)};
  spec.add_prefix_space = j.value("add_prefix_space", false);
  const json& vocab = j.at("vocab");
  std::vector<std::pair<std::string, int64_t>> entries;
  for (size_t id = 0; id < vocab.size(); ++id) entries.emplace_back(vocab[id].get<std::string>(), static_cast<int64_t>(id));
  spec.vocab = vocab_from_map(path, "vocab", entries);
  const auto ids = ids_by_text(entries);
  const json& merges = j.at("merges");
  std::string a, b;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string where = "merges[" + std::to_string(i) + "]";
    if (!merges[i].is_string() || !split_merge(merges[i].get<std::string>(), a, b))
      throw file_error(path, where + ": expected two tokens separated by one space");
    add_merge(path, where, spec.vocab, ids, a, b);
  }
  for (const json& s : j.value("special_tokens", json::array())) spec.special_tokens.push_back(s.get<std::string>());
  return spec;
}

}  // namespace

TokenizerSpec tokenizer_file_read(const std::string& path) {
  if (!path_exists(path)) throw file_error(path, "no such tokenizer file or folder");
  std::string dir = path;
  const std::string name = std::filesystem::path(path).filename().string();
  if (!is_directory(path) && (name == "encoder.json" || name == "vocab.bpe"))
    dir = std::filesystem::path(path).parent_path().string();
  if (is_directory(dir)) {
    if (!path_exists(path_join(dir, "encoder.json")) || !path_exists(path_join(dir, "vocab.bpe")))
      throw file_error(path, "a tokenizer folder needs GPT-2's encoder.json and vocab.bpe");
    return read_gpt2(dir);
  }
  const json j = parse_json(path, read_file_text(path));
  try {
    if (j.is_object() && j.contains("model")) return read_hugging_face(path, j);
    if (j.is_object() && j.value("format", "") == kFormat) return read_ours(path, j);
    if (j.is_object() && j.value("type", "") == "word")
      throw file_error(path, "a word-level tokenizer from dalle.cpp 0.1; retrain it with `dalle tokenizer train`");
  } catch (const json::exception& e) {
    throw file_error(path, std::string("malformed tokenizer: ") + e.what());
  }
  throw file_error(path, "not a tokenizer (expected dalle-bpe JSON, a Hugging Face tokenizer.json, or a GPT-2 folder)");
}

void tokenizer_file_write(const std::string& path, const TokenizerSpec& spec) {
  json vocab = json::array(), merges = json::array();
  for (const std::string& t : spec.vocab.tokens) vocab.push_back(byte_level_encode(t));
  for (const auto& [a, b] : spec.vocab.merges)
    merges.push_back(vocab[static_cast<size_t>(a)].get<std::string>() + " " + vocab[static_cast<size_t>(b)].get<std::string>());
  const json j = {{"format", kFormat},
                  {"version", 1},
                  {"normalizer", {{"nfc", spec.normalization.nfc}, {"lowercase", spec.normalization.lowercase}}},
                  {"pre_tokenizer", "gpt2"},
                  {"add_prefix_space", spec.add_prefix_space},
                  {"vocab", vocab},
                  {"merges", merges},
                  {"special_tokens", spec.special_tokens}};
  write_file_atomic(path, j.dump(1) + "\n");
}

}  // namespace dalle

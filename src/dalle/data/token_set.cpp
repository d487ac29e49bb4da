#include "dalle/data/token_set.h"

#include <nlohmann/json.hpp>
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "dalle/io/safetensors.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

std::string shard_stem(const std::string& dir, int64_t shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%06lld", static_cast<long long>(shard));
  return path_join(dir, name);
}

}  // namespace

namespace {

void write_shard(const std::string& stem, const torch::Tensor& tokens, const std::vector<std::vector<std::string>>& captions) {
  std::string lines;
  for (const auto& c : captions)
    // Invalid UTF-8 in a caption becomes U+FFFD rather than failing the whole shard.
    lines += nlohmann::json(c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_file_atomic(stem + ".captions.jsonl", lines);
  SafeTensors st;
  st.tensors["tokens"] = tokens.to(torch::kInt32);
  st.dtypes["tokens"] = "U16";
  safetensors_save(stem + ".safetensors", st);
}

}  // namespace

TokenSetWriter::TokenSetWriter(std::string dir, int64_t shard_size) : dir_(std::move(dir)), shard_size_(shard_size) {
  if (shard_size_ <= 0) throw Error("token shards need a positive size");
  make_dirs(dir_);
}

void TokenSetWriter::add(const torch::Tensor& tokens, const std::vector<std::vector<std::string>>& captions) {
  if (tokens.size(0) != static_cast<int64_t>(captions.size()))
    throw Error("token writer: " + std::to_string(tokens.size(0)) + " rows of tokens for " +
                std::to_string(captions.size()) + " caption lists");
  for (int64_t i = 0; i < tokens.size(0); ++i) {
    pending_.push_back(tokens[i]);
    buffer_.captions.push_back(captions[static_cast<size_t>(i)]);
    ++samples_;
    if (static_cast<int64_t>(pending_.size()) == shard_size_) flush();
  }
}

void TokenSetWriter::flush() {
  if (pending_.empty()) return;
  write_shard(shard_stem(dir_, shard_++), torch::stack(pending_), buffer_.captions);
  pending_.clear();
  buffer_.captions.clear();
}

void TokenSetWriter::close() { flush(); }

void token_set_write(const std::string& dir, const TokenSet& set, int64_t shard_size) {
  TokenSetWriter writer(dir, shard_size);
  writer.add(set.tokens, set.captions);
  writer.close();
}

std::vector<std::string> token_shard_stems(const std::string& dir) {
  if (!is_directory(dir)) throw file_error(dir, "not a token folder (make one with `dalle vae encode`)");
  std::vector<std::string> stems;
  for (int64_t shard = 0; path_exists(shard_stem(dir, shard) + ".safetensors"); ++shard)
    stems.push_back(shard_stem(dir, shard));
  if (stems.empty()) throw file_error(dir, "no shard-000000.safetensors (make tokens with `dalle vae encode`)");
  return stems;
}

std::vector<std::vector<std::string>> token_shard_read_captions(const std::string& stem, int64_t max_lines) {
  const std::string path = stem + ".captions.jsonl";
  std::ifstream in(path);
  if (!in) throw file_error(path, "missing captions for this shard");
  std::vector<std::vector<std::string>> captions;
  std::string line;
  while (static_cast<int64_t>(captions.size()) < max_lines && std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_array())
      throw file_error(path, "line " + std::to_string(captions.size() + 1) + ": not a JSON array");
    captions.push_back(j.get<std::vector<std::string>>());
  }
  return captions;
}

TokenSet token_shard_read(const std::string& stem) {
  const std::string path = stem + ".safetensors";
  SafeTensors st = safetensors_load(path);
  auto it = st.tensors.find("tokens");
  if (it == st.tensors.end() || it->second.dim() != 3) throw file_error(path, "needs a 3-d tensor named 'tokens'");
  TokenSet set;
  set.tokens = it->second.to(torch::kInt64);
  set.captions = token_shard_read_captions(stem, std::numeric_limits<int64_t>::max());
  if (static_cast<int64_t>(set.captions.size()) != set.tokens.size(0))
    throw file_error(stem + ".captions.jsonl", std::to_string(set.captions.size()) + " caption lines for " +
                                                   std::to_string(set.tokens.size(0)) + " images");
  return set;
}

std::vector<std::vector<std::string>> token_set_read_captions(const std::string& dir, int64_t max_samples) {
  std::vector<std::vector<std::string>> out;
  for (const std::string& stem : token_shard_stems(dir)) {
    if (static_cast<int64_t>(out.size()) >= max_samples) break;
    auto captions = token_shard_read_captions(stem, max_samples - static_cast<int64_t>(out.size()));
    out.insert(out.end(), std::make_move_iterator(captions.begin()), std::make_move_iterator(captions.end()));
  }
  return out;
}

TokenSet token_set_read(const std::string& dir) {
  std::vector<torch::Tensor> parts;
  TokenSet set;
  for (const std::string& stem : token_shard_stems(dir)) {
    TokenSet shard = token_shard_read(stem);
    parts.push_back(shard.tokens);
    set.captions.insert(set.captions.end(), std::make_move_iterator(shard.captions.begin()),
                        std::make_move_iterator(shard.captions.end()));
  }
  set.tokens = torch::cat(parts, 0);
  return set;
}

}  // namespace dalle

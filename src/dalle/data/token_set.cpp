#include "dalle/data/token_set.h"

#include <nlohmann/json.hpp>
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

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

void token_set_write(const std::string& dir, const TokenSet& set, int64_t shard_size) {
  make_dirs(dir);
  const int64_t n = set.tokens.size(0);
  for (int64_t start = 0, shard = 0; start < n; start += shard_size, ++shard) {
    const int64_t count = std::min(shard_size, n - start);
    const std::string stem = shard_stem(dir, shard);
    std::string lines;
    for (int64_t i = start; i < start + count; ++i)
      // Invalid UTF-8 in a caption becomes U+FFFD rather than failing the whole shard.
      lines += nlohmann::json(set.captions[static_cast<size_t>(i)])
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
               "\n";
    write_file_atomic(stem + ".captions.jsonl", lines);
    SafeTensors st;
    st.tensors["tokens"] = set.tokens.narrow(0, start, count).to(torch::kInt32);
    st.dtypes["tokens"] = "U16";
    safetensors_save(stem + ".safetensors", st);
  }
}

TokenSet token_set_read(const std::string& dir) {
  if (!is_directory(dir)) throw file_error(dir, "not a token folder (make one with `dalle vae encode`)");
  std::vector<torch::Tensor> parts;
  TokenSet set;
  for (int64_t shard = 0;; ++shard) {
    const std::string stem = shard_stem(dir, shard);
    if (!path_exists(stem + ".safetensors")) break;
    SafeTensors st = safetensors_load(stem + ".safetensors");
    auto it = st.tensors.find("tokens");
    if (it == st.tensors.end() || it->second.dim() != 3)
      throw file_error(stem + ".safetensors", "needs a 3-d tensor named 'tokens'");
    std::ifstream in(stem + ".captions.jsonl");
    if (!in) throw file_error(stem + ".captions.jsonl", "missing captions for this shard");
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_array())
        throw file_error(stem + ".captions.jsonl", "line " + std::to_string(lineno) + ": not a JSON array");
      set.captions.push_back(j.get<std::vector<std::string>>());
    }
    if (lineno != it->second.size(0))
      throw file_error(stem + ".captions.jsonl", std::to_string(lineno) + " caption lines for " +
                                                     std::to_string(it->second.size(0)) + " images");
    parts.push_back(it->second.to(torch::kInt64));
  }
  if (parts.empty()) throw file_error(dir, "no shard-000000.safetensors (make tokens with `dalle vae encode`)");
  set.tokens = torch::cat(parts, 0);
  return set;
}

}  // namespace dalle

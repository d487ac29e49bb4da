// The byte-pair merge engine: a vocabulary of byte strings plus ranked merges, applied to one
// pre-tokenized piece at a time, with optional BPE dropout (Provilkov et al., 2020).
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dalle {

// A byte-level BPE vocabulary: ids are positions in `tokens`; merges are ranked, best first.
struct BpeVocab {
  std::vector<std::string> tokens;           // id -> bytes; every single byte must have an id
  std::vector<std::pair<int, int>> merges;   // rank -> (left id, right id)
};

struct DropoutStats {
  int64_t applied = 0;  // merges performed
  int64_t skipped = 0;  // merges that applied but were dropped
};

class BpeModel {
 public:
  BpeModel() = default;
  // Checks the vocabulary (throws dalle::Error naming the token or merge at fault).
  explicit BpeModel(BpeVocab vocab);

  // Appends the ids of `piece` to `out`. Lowest rank first, leftmost first among equal ranks.
  void encode_piece(std::string_view piece, std::vector<int>& out) const;
  // The same with each applicable merge skipped with probability `p`.
  void encode_piece_dropout(std::string_view piece, double p, std::mt19937_64& rng, std::vector<int>& out,
                            DropoutStats* stats) const;

  const BpeVocab& vocab() const { return vocab_; }
  int size() const { return static_cast<int>(vocab_.tokens.size()); }
  const std::string& token(int id) const { return vocab_.tokens[static_cast<size_t>(id)]; }
  int byte_id(uint8_t b) const { return byte_ids_[b]; }
  // -1 when the bytes are not a token.
  int find(std::string_view bytes) const;

 private:
  struct Merge {
    int rank;
    int result;
  };
  // Open-addressing table from (left, right) to its merge; the hot lookup of encoding.
  const Merge* find_merge(int left, int right) const;
  void encode_heap(std::string_view piece, double p, std::mt19937_64* rng, std::vector<int>& out,
                   DropoutStats* stats) const;

  BpeVocab vocab_;
  int byte_ids_[256] = {};
  std::unordered_map<std::string, int> ids_;
  std::vector<uint64_t> merge_keys_;
  std::vector<Merge> merge_values_;
  uint64_t merge_mask_ = 0;
};

}  // namespace dalle

#include "dalle/text/bpe.h"

#include <queue>

#include "dalle/util/error.h"

namespace dalle {

namespace {

constexpr uint64_t kEmpty = ~uint64_t{0};

uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
uint64_t slot_of(uint64_t key, uint64_t mask) { return (key * 0x9E3779B97F4A7C15ull >> 17) & mask; }

// Pieces up to this many bytes use the simple quadratic scan; longer ones a heap (no quadratic
// blow-up on a megabyte-long word).
constexpr size_t kShortPiece = 48;

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

BpeModel::BpeModel(BpeVocab vocab) : vocab_(std::move(vocab)) {
  ids_.reserve(vocab_.tokens.size());
  for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
    const std::string& t = vocab_.tokens[id];
    if (t.empty()) throw Error("token " + std::to_string(id) + " is empty");
    if (!ids_.emplace(t, static_cast<int>(id)).second)
      throw Error("token '" + printable(t) + "' appears twice (ids " + std::to_string(ids_[t]) + " and " +
                  std::to_string(id) + ")");
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = ids_.find(std::string(1, static_cast<char>(b)));
    if (it == ids_.end()) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "byte 0x%02X has no token; a byte-level vocabulary needs all 256", b);
      throw Error(buf);
    }
    byte_ids_[b] = it->second;
  }
  uint64_t capacity = 16;
  while (capacity < 2 * vocab_.merges.size() + 16) capacity *= 2;
  merge_mask_ = capacity - 1;
  merge_keys_.assign(capacity, kEmpty);
  merge_values_.assign(capacity, Merge{0, 0});
  const int n = size();
  for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
    const auto [left, right] = vocab_.merges[rank];
    if (left < 0 || left >= n || right < 0 || right >= n)
      throw Error("merge " + std::to_string(rank) + " refers to an id outside the vocabulary");
    const std::string joined = vocab_.tokens[static_cast<size_t>(left)] + vocab_.tokens[static_cast<size_t>(right)];
    const int result = find(joined);
    if (result < 0)
      throw Error("merge " + std::to_string(rank) + " ('" + printable(vocab_.tokens[static_cast<size_t>(left)]) +
                  "' + '" + printable(vocab_.tokens[static_cast<size_t>(right)]) + "') makes '" + printable(joined) +
                  "', which is not in the vocabulary");
    const uint64_t key = pair_key(left, right);
    uint64_t slot = slot_of(key, merge_mask_);
    while (merge_keys_[slot] != kEmpty && merge_keys_[slot] != key) slot = (slot + 1) & merge_mask_;
    if (merge_keys_[slot] == key) continue;  // a repeated merge keeps its first (best) rank
    merge_keys_[slot] = key;
    merge_values_[slot] = Merge{static_cast<int>(rank), result};
  }
}

int BpeModel::find(std::string_view bytes) const {
  const auto it = ids_.find(std::string(bytes));
  return it == ids_.end() ? -1 : it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int left, int right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t slot = slot_of(key, merge_mask_);; slot = (slot + 1) & merge_mask_) {
    if (merge_keys_[slot] == key) return &merge_values_[slot];
    if (merge_keys_[slot] == kEmpty) return nullptr;
  }
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int>& out) const {
  if (piece.size() > kShortPiece) return encode_heap(piece, 0.0, nullptr, out, nullptr);
  int sym[kShortPiece];
  size_t n = piece.size();
  for (size_t i = 0; i < n; ++i) sym[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  while (n > 1) {
    int best_rank = INT32_MAX, best_result = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      const Merge* m = find_merge(sym[i], sym[i + 1]);
      if (m && m->rank < best_rank) {
        best_rank = m->rank;
        best_result = m->result;
        best = i;
      }
    }
    if (best_result < 0) break;
    sym[best] = best_result;
    for (size_t i = best + 1; i + 1 < n; ++i) sym[i] = sym[i + 1];
    --n;
  }
  out.insert(out.end(), sym, sym + n);
}

void BpeModel::encode_piece_dropout(std::string_view piece, double p, std::mt19937_64& rng, std::vector<int>& out,
                                    DropoutStats* stats) const {
  if (p <= 0) return encode_piece(piece, out);
  encode_heap(piece, p, &rng, out, stats);
}

// Symbols in a doubly linked list; candidate merges in a min-heap on (rank, position), checked
// against the list when popped. With dropout, a popped merge is skipped with probability p and
// set aside until the next merge succeeds (each merge step draws afresh for every candidate).
void BpeModel::encode_heap(std::string_view piece, double p, std::mt19937_64* rng, std::vector<int>& out,
                           DropoutStats* stats) const {
  const size_t n = piece.size();
  if (n == 0) return;
  std::vector<int> sym(n), prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Candidate {
    int rank, pos, left, right;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto offer = [&](int pos) {
    if (pos < 0 || next[static_cast<size_t>(pos)] < 0) return;
    const int r = next[static_cast<size_t>(pos)];
    if (const Merge* m = find_merge(sym[static_cast<size_t>(pos)], sym[static_cast<size_t>(r)]))
      heap.push({m->rank, pos, sym[static_cast<size_t>(pos)], sym[static_cast<size_t>(r)]});
  };
  for (size_t i = 0; i + 1 < n; ++i) offer(static_cast<int>(i));
  std::vector<Candidate> skipped;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const auto pos = static_cast<size_t>(c.pos);
    const int r = next[pos];
    if (sym[pos] != c.left || r < 0 || sym[static_cast<size_t>(r)] != c.right) continue;  // stale
    if (rng && uniform(*rng) < p) {
      skipped.push_back(c);
      if (stats) ++stats->skipped;
      continue;
    }
    if (stats) ++stats->applied;
    sym[pos] = find_merge(c.left, c.right)->result;
    sym[static_cast<size_t>(r)] = -1;
    next[pos] = next[static_cast<size_t>(r)];
    if (next[pos] >= 0) prev[static_cast<size_t>(next[pos])] = c.pos;
    offer(prev[pos]);
    offer(c.pos);
    for (const Candidate& s : skipped) heap.push(s);
    skipped.clear();
  }
  for (int i = 0; i >= 0; i = next[static_cast<size_t>(i)]) out.push_back(sym[static_cast<size_t>(i)]);
}

}  // namespace dalle

#include "dalle/text/bpe_train.h"

#include <algorithm>
#include <queue>
#include <thread>
#include <unordered_map>

#include "dalle/text/pretokenize.h"
#include "dalle/text/unicode.h"
#include "dalle/util/threads.h"

namespace dalle {

namespace {

using PieceCounts = std::unordered_map<std::string, int64_t>;

PieceCounts count_pieces(const std::vector<std::string>& corpus, const BpeTrainOptions& o) {
  const int threads = std::max(1, std::min<int>(o.threads > 0 ? o.threads : default_thread_count(),
                                               static_cast<int>(corpus.size() / 1000) + 1));
  std::vector<PieceCounts> partial(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<TextSpan> spans;
      PieceCounts& counts = partial[static_cast<size_t>(t)];
      for (size_t i = static_cast<size_t>(t); i < corpus.size(); i += static_cast<size_t>(threads)) {
        const std::string text = normalize_text(corpus[i], o.nfc, o.lowercase);
        pretokenize_gpt2(text, spans);
        for (const TextSpan& s : spans) ++counts[text.substr(s.begin, s.length)];
      }
    });
  for (auto& th : pool) th.join();
  PieceCounts all = std::move(partial[0]);
  for (size_t t = 1; t < partial.size(); ++t)
    for (auto& [piece, n] : partial[t]) all[piece] += n;
  return all;
}

uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

struct Word {
  std::vector<int> symbols;
  int64_t count;
};

}  // namespace

BpeVocab bpe_train(const std::vector<std::string>& corpus, const BpeTrainOptions& o) {
  BpeVocab vocab;
  for (int b = 0; b < 256; ++b) vocab.tokens.emplace_back(1, static_cast<char>(b));

  // Unique pieces, sorted so the result does not depend on hash order.
  std::vector<Word> words;
  {
    PieceCounts counts = count_pieces(corpus, o);
    std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
    counts.clear();
    std::sort(sorted.begin(), sorted.end());
    words.reserve(sorted.size());
    for (auto& [piece, n] : sorted) {
      if (piece.size() < 2) continue;  // a single byte has no pair
      Word w{std::vector<int>(piece.size()), n};
      for (size_t i = 0; i < piece.size(); ++i) w.symbols[i] = static_cast<uint8_t>(piece[i]);
      words.push_back(std::move(w));
    }
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;  // words holding the pair (may repeat)
  for (uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      pair_count[k] += words[w].count;
      auto& list = where[k];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  // Max-heap on count; ties to the smaller key. Entries go stale as counts change and are
  // re-queued with their current count when popped.
  using Entry = std::pair<int64_t, uint64_t>;
  auto worse = [](const Entry& a, const Entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (const auto& [k, n] : pair_count) heap.push({n, k});

  const int wanted = o.merges;
  std::vector<uint32_t> visited(words.size(), UINT32_MAX);
  std::vector<uint64_t> touched;
  while (static_cast<int>(vocab.merges.size()) < wanted && !heap.empty()) {
    const auto [count, key] = heap.top();
    heap.pop();
    const auto it = pair_count.find(key);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != count) {
      if (current > 0) heap.push({current, key});
      continue;
    }
    if (count < o.min_frequency) break;
    const int a = static_cast<int>(key >> 32), b = static_cast<int>(key & 0xFFFFFFFFu);
    const int merged = static_cast<int>(vocab.tokens.size());
    const auto merge_index = static_cast<uint32_t>(vocab.merges.size());
    vocab.tokens.push_back(vocab.tokens[static_cast<size_t>(a)] + vocab.tokens[static_cast<size_t>(b)]);
    vocab.merges.emplace_back(a, b);

    std::vector<uint32_t> holders = std::move(where[key]);
    where.erase(key);
    pair_count.erase(key);
    touched.clear();
    auto add = [&](int x, int y, int64_t n, uint32_t w) {
      const uint64_t k = pair_key(x, y);
      pair_count[k] += n;
      if (n > 0) {
        auto& list = where[k];
        if (list.empty() || list.back() != w) list.push_back(w);
        touched.push_back(k);
      }
    };
    for (uint32_t w : holders) {
      if (visited[w] == merge_index) continue;
      visited[w] = merge_index;
      auto& s = words[w].symbols;
      const int64_t n = words[w].count;
      size_t out = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          if (out > 0) {
            add(s[out - 1], a, -n, w);
            add(s[out - 1], merged, n, w);
          }
          if (i + 2 < s.size()) {
            add(b, s[i + 2], -n, w);
            add(merged, s[i + 2], n, w);
          }
          s[out++] = merged;
          ++i;
        } else {
          s[out++] = s[i];
        }
      }
      s.resize(out);
    }
    pair_count.erase(key);  // its own occurrences may have been re-counted through neighbours
    for (uint64_t k : touched) {
      const auto c = pair_count.find(k);
      if (c != pair_count.end() && c->second > 0) heap.push({c->second, k});
    }
    if (o.progress) o.progress(static_cast<int>(vocab.merges.size()), wanted);
  }
  return vocab;
}

}  // namespace dalle

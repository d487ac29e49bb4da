// Caption tokenizer. PLACEHOLDER (issue 2): a word-level vocabulary learned from the captions,
// lowercased, with an <unk> id. The byte-level BPE of issue 3 replaces it behind this interface.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace dalle {

class Tokenizer {
 public:
  // Learns the `max_vocab` - 1 most frequent words (ties broken alphabetically) plus <unk> = 0.
  static Tokenizer train(const std::vector<std::string>& captions, int max_vocab);
  static Tokenizer load(const std::string& path);
  void save(const std::string& path) const;

  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  int vocab_size() const { return static_cast<int>(words_.size()); }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int> index_;
};

// Lowercased words and single punctuation characters, in order.
std::vector<std::string> split_words(const std::string& text);

// Truncates to `text_len` and fills position i >= length with the pad id text_vocab + i
// (SPEC §2: a learned padding token per position).
std::vector<int64_t> pad_text(const std::vector<int>& ids, int text_len, int text_vocab);

}  // namespace dalle

// Learning a byte-level BPE vocabulary from captions: count GPT-2 pre-tokenized pieces, then
// repeatedly merge the most frequent adjacent pair, updating only the words that contain it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "dalle/text/bpe.h"

namespace dalle {

struct BpeTrainOptions {
  int merges = 16384 - 256 - 1;  // the paper's 16,384 ids: 256 bytes, merges, <|endoftext|>
  int min_frequency = 2;         // stop early when no pair occurs this often
  bool nfc = true;
  bool lowercase = true;         // the paper lowercases captions
  int threads = 0;               // 0 = all cores, for counting
  std::function<void(int merges_done, int merges_wanted)> progress;
};

// Ids 0-255 are the bytes in order, then one id per merge in the order learned. Deterministic:
// the same corpus and options give the same vocabulary (ties go to the smaller pair of ids).
BpeVocab bpe_train(const std::vector<std::string>& corpus, const BpeTrainOptions& options);

}  // namespace dalle

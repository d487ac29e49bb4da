// GPT-2's pre-tokenizer: splits text into the pieces BPE merges never cross. It implements, by
// hand and in one pass, the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s = Unicode White_Space, as tiktoken and Hugging Face tokenizers evaluate it.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace dalle {

struct TextSpan {
  uint32_t begin;
  uint32_t length;
};

// Appends the pieces of `text` to `out` (cleared first). Every byte lands in exactly one piece.
void pretokenize_gpt2(std::string_view text, std::vector<TextSpan>& out);

}  // namespace dalle

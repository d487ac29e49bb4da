// Tokenizer files: ours (JSON, "format": "dalle-bpe"), GPT-2's encoder.json + vocab.bpe, and
// Hugging Face tokenizer.json with a byte-level BPE model. All store tokens in GPT-2's
// byte-level alphabet (byte_level.h).
//
// Ours:
//   {"format": "dalle-bpe", "version": 1,
//    "normalizer": {"nfc": true, "lowercase": true}, "pre_tokenizer": "gpt2",
//    "add_prefix_space": false,
//    "vocab": ["!", "\"", ...],          // id = position
//    "merges": ["Ġ t", "h e", ...],      // rank = position
//    "special_tokens": ["<|endoftext|>"]}
#pragma once
#include <string>

#include "dalle/text/tokenizer.h"

namespace dalle {

// Detects the format. Errors name the file, and the line or entry at fault.
TokenizerSpec tokenizer_file_read(const std::string& path);
void tokenizer_file_write(const std::string& path, const TokenizerSpec& spec);

}  // namespace dalle

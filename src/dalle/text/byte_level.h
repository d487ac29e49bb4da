// GPT-2's reversible map from bytes to printable characters. Vocabulary files (GPT-2's
// encoder.json and vocab.bpe, Hugging Face's tokenizer.json, ours) store tokens this way so that
// partial UTF-8 sequences and spaces survive as JSON strings: the space byte is written 'Ġ'.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace dalle {

std::string byte_level_encode(std::string_view bytes);
// std::nullopt when `text` holds a character outside the map.
std::optional<std::string> byte_level_decode(std::string_view text);

}  // namespace dalle

// Unicode facts the tokenizer needs, taken from utf8proc (Debian's libutf8proc): UTF-8 decoding
// with a byte fallback, the character classes of GPT-2's pre-tokenizer, NFC and lowercasing.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace dalle {

// One step of UTF-8 decoding. An invalid or truncated sequence yields its first byte alone
// (valid = false, length 1), so every byte string can be walked and encoded.
struct Utf8Char {
  char32_t code;
  uint8_t length;
  bool valid;
};

inline Utf8Char utf8_decode(std::string_view s, size_t i);

// The classes GPT-2's pattern distinguishes: \p{L}, \p{N}, \s (Unicode White_Space) and the rest.
// Invalid bytes are `other`.
enum class CharClass : uint8_t { letter, number, space, other };

CharClass char_class(char32_t code);

bool utf8_is_valid(std::string_view s);

// NFC, then (optionally) per-code-point lowercasing. Invalid bytes pass through unchanged; the
// valid stretches around them are normalised.
std::string normalize_text(std::string_view s, bool nfc, bool lowercase);

// --- inline definitions -------------------------------------------------------------------------

inline Utf8Char utf8_decode(std::string_view s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return {b0, 1, true};
  const size_t left = s.size() - i;
  auto cont = [&](size_t k) { return k < left && (static_cast<uint8_t>(s[i + k]) & 0xC0) == 0x80; };
  auto byte = [&](size_t k) { return static_cast<char32_t>(static_cast<uint8_t>(s[i + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return {((b0 & 0x1Fu) << 6) | byte(1), 2, true};
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    const char32_t c = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
    if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) return {c, 3, true};  // no overlongs, no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const char32_t c = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
    if (c >= 0x10000 && c <= 0x10FFFF) return {c, 4, true};
  }
  return {b0, 1, false};
}

}  // namespace dalle

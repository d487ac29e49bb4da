#include "dalle/text/byte_level.h"

#include <array>

#include "dalle/text/unicode.h"

namespace dalle {

namespace {

// Printable Latin-1 bytes stand for themselves; the others (controls, space, soft hyphen, ...)
// take the code points from U+0100 on, in byte order.
const std::array<char32_t, 256>& byte_to_code() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : extra++;
    }
    return t;
  }();
  return table;
}

void append_code(std::string& out, char32_t c) {  // code points below U+0800 only
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_code(out, byte_to_code()[b]);
  return out;
}

std::optional<std::string> byte_level_decode(std::string_view text) {
  static const std::array<int, 512> code_to_byte = [] {
    std::array<int, 512> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_code()[static_cast<size_t>(b)]] = b;
    return t;
  }();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_decode(text, i);
    if (!c.valid || c.code >= 512 || code_to_byte[c.code] < 0) return std::nullopt;
    out += static_cast<char>(code_to_byte[c.code]);
    i += c.length;
  }
  return out;
}

}  // namespace dalle

#include "dalle/text/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

namespace dalle {

namespace {

CharClass class_from_utf8proc(char32_t code) {
  // White_Space is the separators (Zs, Zl, Zp) plus the controls TAB..CR and NEL.
  if ((code >= 0x09 && code <= 0x0D) || code == 0x85) return CharClass::space;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(code))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return CharClass::letter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return CharClass::number;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
      return CharClass::space;
    default:
      return CharClass::other;
  }
}

// One byte per code point, filled once from utf8proc: the pre-tokenizer asks for every character.
const std::vector<CharClass>& class_table() {
  static const std::vector<CharClass> table = [] {
    std::vector<CharClass> t(0x110000);
    for (char32_t c = 0; c < 0x110000; ++c) t[c] = class_from_utf8proc(c);
    return t;
  }();
  return table;
}

void append_utf8(std::string& out, char32_t code) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(code), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string normalize_valid(std::string_view s, bool nfc, bool lowercase) {
  std::string composed;
  if (nfc) {
    utf8proc_uint8_t* dst = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n >= 0) composed.assign(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
    std::free(dst);
    if (n < 0) composed.assign(s);
  } else {
    composed.assign(s);
  }
  if (!lowercase) return composed;
  std::string out;
  out.reserve(composed.size());
  for (size_t i = 0; i < composed.size();) {
    const Utf8Char ch = utf8_decode(composed, i);
    append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(ch.code))));
    i += ch.length;
  }
  return out;
}

}  // namespace

CharClass char_class(char32_t code) { return code < 0x110000 ? class_table()[code] : CharClass::other; }

bool utf8_is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_decode(s, i);
    if (!c.valid) return false;
    i += c.length;
  }
  return true;
}

std::string normalize_text(std::string_view s, bool nfc, bool lowercase) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
  if (ascii) {  // NFC is the identity on ASCII
    std::string out(s);
    if (lowercase)
      for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  std::string out;
  out.reserve(s.size());
  size_t run = 0;  // start of the current valid stretch
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_decode(s, i);
    if (!c.valid) {
      out += normalize_valid(s.substr(run, i - run), nfc, lowercase);
      out += s[i];
      run = i + 1;
    }
    i += c.length;
  }
  out += normalize_valid(s.substr(run), nfc, lowercase);
  return out;
}

}  // namespace dalle

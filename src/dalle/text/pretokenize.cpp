#include "dalle/text/pretokenize.h"

#include "dalle/text/unicode.h"

namespace dalle {

namespace {

CharClass class_at(std::string_view s, size_t i, size_t& length) {
  const Utf8Char c = utf8_decode(s, i);
  length = c.length;
  return c.valid ? char_class(c.code) : CharClass::other;
}

// The end of the run of characters of class `cls` that starts at `i`.
size_t run_end(std::string_view s, size_t i, CharClass cls) {
  while (i < s.size()) {
    size_t len;
    if (class_at(s, i, len) != cls) break;
    i += len;
  }
  return i;
}

// The length of a contraction ('s 't 're 've 'm 'll 'd, lowercase only) at `i`, or 0.
size_t contraction_at(std::string_view s, size_t i) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char b = s[i + 2];
  return ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) ? 3 : 0;
}

}  // namespace

void pretokenize_gpt2(std::string_view s, std::vector<TextSpan>& out) {
  out.clear();
  auto emit = [&](size_t begin, size_t end) {
    out.push_back({static_cast<uint32_t>(begin), static_cast<uint32_t>(end - begin)});
  };
  size_t i = 0;
  while (i < s.size()) {
    if (const size_t n = contraction_at(s, i)) {
      emit(i, i + n);
      i += n;
      continue;
    }
    size_t len;
    CharClass cls = class_at(s, i, len);
    // " ?X+" for X in letters, numbers, other: one leading ASCII space joins the run after it.
    if (s[i] == ' ' && i + 1 < s.size()) {
      size_t next_len;
      const CharClass next = class_at(s, i + 1, next_len);
      if (next != CharClass::space) {
        const size_t end = run_end(s, i + 1, next);
        emit(i, end);
        i = end;
        continue;
      }
    }
    if (cls != CharClass::space) {
      const size_t end = run_end(s, i, cls);
      emit(i, end);
      i = end;
      continue;
    }
    // Whitespace: "\s+(?!\S)" leaves the last space of a run for the word that follows it;
    // a single space before a non-space falls through to "\s+".
    size_t end = i, last = i;
    while (end < s.size()) {
      size_t l;
      if (class_at(s, end, l) != CharClass::space) break;
      last = end;
      end += l;
    }
    if (end < s.size() && last > i) end = last;
    emit(i, end);
    i = end;
  }
}

}  // namespace dalle

#include "dalle/data/caption_filters.h"

#include <cstdio>  // cld2's header uses FILE without including it
#include <cld2/public/compact_lang_det.h>

#include <re2/re2.h>

#include <unordered_set>

namespace dalle {

namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 if none starts there (overlong forms,
// surrogates and code points above U+10FFFF are invalid, as RFC 3629 says).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c == 0xe0) { n = 3; lo = 0xa0; }
  else if (c == 0xed) { n = 3; hi = 0x9f; }
  else if (c >= 0xe1 && c <= 0xef) n = 3;
  else if (c == 0xf0) { n = 4; lo = 0x90; }
  else if (c == 0xf4) { n = 4; hi = 0x8f; }
  else if (c >= 0xf1 && c <= 0xf3) n = 4;
  else return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return n;
}

bool is_space_or_control(unsigned char c) { return c <= 0x20 || c == 0x7f; }

}  // namespace

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_repair(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool in_bad = false;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      if (!in_bad) out += "\xef\xbf\xbd";
      in_bad = true;
      ++i;
      continue;
    }
    in_bad = false;
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string caption_normalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (const char ch : s) {
    if (is_space_or_control(static_cast<unsigned char>(ch))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

int caption_word_count(std::string_view s) {
  int words = 0;
  bool in_word = false, has_alnum = false;
  for (size_t i = 0; i <= s.size(); ++i) {
    const unsigned char c = i < s.size() ? static_cast<unsigned char>(s[i]) : ' ';
    if (is_space_or_control(c)) {
      if (in_word && has_alnum) ++words;
      in_word = has_alnum = false;
      continue;
    }
    in_word = true;
    if (std::isalnum(c) || c >= 0x80) has_alnum = true;
  }
  return words;
}

CaptionLanguage caption_language(std::string_view text, std::string* code) {
  bool reliable = false;
  CLD2::Language language3[3];
  int percent3[3];
  int text_bytes = 0;
  // The English hint matters for short captions: without it cld2 calls "an orange rhombus"
  // Indonesian ("orang"), with it French, German, Spanish, Russian, ... are still detected.
  const CLD2::Language lang = CLD2::DetectLanguageSummary(
      text.data(), static_cast<int>(text.size()), /*is_plain_text=*/true, /*tld_hint=*/"",
      /*encoding_hint=*/0, /*language_hint=*/CLD2::ENGLISH, language3, percent3, &text_bytes, &reliable);
  if (code) *code = CLD2::LanguageCode(lang);
  if (lang == CLD2::ENGLISH) return CaptionLanguage::english;
  if (lang == CLD2::UNKNOWN_LANGUAGE || lang == CLD2::TG_UNKNOWN_LANGUAGE || !reliable)
    return CaptionLanguage::unknown;
  return CaptionLanguage::other;
}

namespace {

// Spans that count as one boilerplate word each. RE2 (linear time in the caption's length, so no
// input can make it slow) over bytes (Latin-1 mode): input is lowercased ASCII, other bytes pass
// through untouched and never match.
RE2::Options latin1_options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  return o;
}

const RE2& boilerplate_spans() {
  static const std::string month =
      "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
      "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?";
  static const std::string day = "\\d{1,2}(?:st|nd|rd|th)?";
  static const std::string image_ext = "(?:jpe?g|png|gif|tiff?|bmp|heic|webp|raw|cr2|nef|arw|dng)";
  static const RE2 re(
      "(?:https?://|ftp://|www\\.)\\S+"                                  // URLs
      "|\\S+\\.(?:com|org|net|edu|gov|io|info|co\\.uk)(?:/\\S*)?"        // bare domains
      "|\\S+\\." + image_ext + "\\b"                                     // any image file name
      "|\\b(?:img|dsc[nf]?|dcim|pxl|_mg|gopr|gp|vid|mvi|cimg|pict|sam|p)[_-]?\\d[\\d_-]*\\b"  // camera names
      "|\\b\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2}\\b"                          // 2021-03-04
      "|\\b\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{2,4}\\b"                        // 03/04/2021, 4.3.21
      "|\\b(?:19|20)\\d{6}\\b"                                           // 20210304
      "|\\b" + day + "\\s+(?:of\\s+)?" + month + "(?:,?\\s+\\d{2,4})?\\b"  // 4th of march 2021
      "|\\b" + month + "\\s+" + day + "(?:,?\\s+\\d{4})?\\b"             // march 4, 2021
      "|\\b" + month + ",?\\s+\\d{4}\\b"                                 // mar 2021
      "|\\b\\d{1,2}:\\d{2}(?::\\d{2})?(?:\\s*[ap]\\.?m\\.?)?"            // 12:30 pm
      "|\\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\\b",
      latin1_options());
  return re;
}

const std::unordered_set<std::string>& boilerplate_words() {
  static const std::unordered_set<std::string> words = {
      "untitled", "image", "images", "img", "photo", "photos", "photograph", "photographed",
      "picture", "pic", "pics", "uploaded", "upload", "taken", "copyright", "©", "rights",
      "reserved", "stock", "file", "thumbnail", "jpg", "jpeg", "png", "click", "download",
      "view", "description", "caption", "available", "unknown", "dsc", "screenshot", "am",
      "pm", "http", "https", "www", "edit", "edited"};
  return words;
}

const std::unordered_set<std::string>& function_words() {
  static const std::unordered_set<std::string> words = {
      "a", "an", "the", "of", "on", "in", "at", "by", "to", "for", "from", "with", "and", "or",
      "is", "was", "this", "that", "my", "our", "your", "it", "its", "no", "not", "be", "been"};
  return words;
}

}  // namespace

double caption_boilerplate_fraction(std::string_view text) {
  // Lowercased words, one space apart.
  std::string marked;
  marked.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && is_space_or_control(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !is_space_or_control(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i) break;
    for (size_t k = i; k < j; ++k) marked += static_cast<char>(std::tolower(static_cast<unsigned char>(text[k])));
    marked += ' ';
    i = j;
  }
  RE2::GlobalReplace(&marked, boilerplate_spans(), " \x01 ");
  int boiler = 0, content = 0;
  size_t i = 0;
  while (i < marked.size()) {
    while (i < marked.size() && is_space_or_control(static_cast<unsigned char>(marked[i])) && marked[i] != '\x01') ++i;
    if (i >= marked.size()) break;
    if (marked[i] == '\x01') {
      ++boiler;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < marked.size() && !is_space_or_control(static_cast<unsigned char>(marked[j]))) ++j;
    std::string word = marked.substr(i, j - i);
    i = j;
    // Strip ASCII punctuation around the word ("(untitled)", "photo:").
    size_t a = 0, b = word.size();
    while (a < b && std::ispunct(static_cast<unsigned char>(word[a]))) ++a;
    while (b > a && std::ispunct(static_cast<unsigned char>(word[b - 1]))) --b;
    word = word.substr(a, b - a);
    if (word.empty()) continue;  // punctuation only
    if (function_words().count(word)) continue;
    bool digits = true;
    for (const char c : word) digits = digits && (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
    if (digits || boilerplate_words().count(word)) ++boiler;
    else ++content;
  }
  return boiler + content == 0 ? 0.0 : static_cast<double>(boiler) / (boiler + content);
}

}  // namespace dalle

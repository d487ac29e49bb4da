// Caption checks of the paper's data collection (SPEC §4): too short, not English, mostly
// boilerplate ("photographed on <date>", camera file names, "untitled", URLs), plus ours: empty,
// invalid UTF-8, absurdly long. Each is a pure function of the text, so it is testable alone.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dalle {

bool utf8_valid(std::string_view text);
// Replaces each maximal invalid byte sequence by U+FFFD; valid text comes back unchanged.
std::string utf8_repair(std::string_view text);

// Trims, turns tabs/newlines/other ASCII control bytes into spaces and collapses runs of spaces.
std::string caption_normalize(std::string_view text);

// Words: whitespace-separated tokens with at least one letter or digit (any non-ASCII byte
// counts as a letter, so "café" and "猫" are words).
int caption_word_count(std::string_view text);

// Language by cld2, hinted towards English (the paper's data is English-first). English: cld2 says "en". Other: cld2 names another language (and says it
// is reliable). Unknown: too little signal (cld2 cannot tell on many 2–4 word captions, e.g.
// "a red circle"); unknown captions are kept: the paper's filter removes non-English text, it
// does not require proof of English.
enum class CaptionLanguage { english, other, unknown };
CaptionLanguage caption_language(std::string_view utf8_text, std::string* code = nullptr);

// Fraction of the caption's words that are boilerplate: dates in many formats (2021-03-04,
// 03/04/2021, 4.3.21, "March 4, 2021", "4th of March 2021", "Mar 2021"), times, camera file names
// (IMG_1234.JPG, DSC01234, PXL_20210101_123456789), words like "untitled", "image",
// "photographed", "uploaded", "copyright", and URLs. Function words ("a", "on", "the") count
// neither way. A date counts as one word. 0 for a caption with no words.
double caption_boilerplate_fraction(std::string_view text);

}  // namespace dalle

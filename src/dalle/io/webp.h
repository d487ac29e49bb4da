// WebP images (libwebp): web-scale datasets hold many of them. Still images decode directly;
// an animation gives its first frame, as for GIFs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dalle {

// The RIFF....WEBP signature.
bool webp_signature(const uint8_t* data, size_t size);

// Width and height from the header; throws naming `source` on a broken one.
void webp_size(const uint8_t* data, size_t size, const std::string& source, int* width, int* height);

// 8-bit RGBA pixels (alpha 255 where the file has none) of the image or the first frame.
std::vector<uint8_t> webp_decode_rgba(const uint8_t* data, size_t size, const std::string& source, int* width,
                                      int* height);

}  // namespace dalle

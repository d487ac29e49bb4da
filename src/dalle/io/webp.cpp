#include "dalle/io/webp.h"

#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>

#include "dalle/util/error.h"

namespace dalle {

bool webp_signature(const uint8_t* data, size_t size) {
  return size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0;
}

void webp_size(const uint8_t* data, size_t size, const std::string& source, int* width, int* height) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    throw file_error(source, "not a decodable WebP image (broken header)");
  *width = features.width;
  *height = features.height;
}

std::vector<uint8_t> webp_decode_rgba(const uint8_t* data, size_t size, const std::string& source, int* width,
                                      int* height) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    throw file_error(source, "not a decodable WebP image (broken header)");
  std::vector<uint8_t> pixels;
  if (!features.has_animation) {
    uint8_t* rgba = WebPDecodeRGBA(data, size, width, height);
    if (!rgba) throw file_error(source, "cannot decode WebP image (corrupt or truncated)");
    pixels.assign(rgba, rgba + static_cast<size_t>(*width) * *height * 4);
    WebPFree(rgba);
    return pixels;
  }
  // An animation: the first frame, composed on its canvas.
  WebPAnimDecoderOptions options;
  WebPAnimDecoderOptionsInit(&options);
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  const WebPData bytes = {data, size};
  WebPAnimDecoder* decoder = WebPAnimDecoderNew(&bytes, &options);
  if (!decoder) throw file_error(source, "cannot decode animated WebP image");
  WebPAnimInfo info;
  uint8_t* frame = nullptr;
  int timestamp = 0;
  const bool ok = WebPAnimDecoderGetInfo(decoder, &info) && WebPAnimDecoderGetNext(decoder, &frame, &timestamp);
  if (ok) {
    *width = static_cast<int>(info.canvas_width);
    *height = static_cast<int>(info.canvas_height);
    pixels.assign(frame, frame + static_cast<size_t>(*width) * *height * 4);
  }
  WebPAnimDecoderDelete(decoder);
  if (!ok) throw file_error(source, "cannot decode the first frame of animated WebP image");
  return pixels;
}

}  // namespace dalle

// The body of `POST /v1/images/generations` and `POST /v1/jobs`: OpenAI's image-generation fields
// (prompt, n, size, response_format, model, user) plus ours (seed, candidates, temperature, top_k,
// top_p, cfg_scale), checked field by field so that every bad request gets a 400 naming the field.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "dalle/bundle/config.h"
#include "dalle/sample/generate.h"

namespace dalle {

// What one request may ask for (`dalle serve` flags).
struct ServeLimits {
  int64_t max_body_bytes = 64 * 1024;
  int max_prompt_chars = 1000;
  int max_n = 8;
  int max_candidates = 64;
};

// A request the server refuses: `param` is the offending field ("" when it is the body itself).
class RequestError : public std::runtime_error {
 public:
  RequestError(std::string param, const std::string& message)
      : std::runtime_error(message), param(std::move(param)) {}
  std::string param;
};

struct ImageRequest {
  GenerateRequest generate;  // count = candidates, keep = n
  int n = 1;
  int candidates = 1;
  std::string response_format = "url";  // or "b64_json"
};

// Parses and checks `body` against the limits and the bundle's config (its image size and
// vocabulary; its `sample` section fills the sampling settings a request leaves out).
// `random_seed` is used when the request gives none. Throws RequestError.
ImageRequest parse_image_request(const std::string& body, const ServeLimits& limits, const ModelConfig& model,
                                 uint64_t random_seed);

// The request as the job API echoes it.
nlohmann::json image_request_json(const ImageRequest& r);

}  // namespace dalle

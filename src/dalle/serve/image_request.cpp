#include "dalle/serve/image_request.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace dalle {

namespace {

using json = nlohmann::json;

int64_t integer_field(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    throw RequestError(name, "'" + name + "' must be an integer");
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw RequestError(name, "'" + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d);
}

double number_field(const json& v, const std::string& name, double lo, double hi, bool above_lo = false) {
  if (!v.is_number()) throw RequestError(name, "'" + name + "' must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d > hi || d < lo || (above_lo && d == lo)) {
    char message[160];
    std::snprintf(message, sizeof(message), above_lo ? "'%s' must be above %g and at most %g" : "'%s' must be between %g and %g",
                  name.c_str(), lo, hi);
    throw RequestError(name, message);
  }
  return d;
}

std::string string_field(const json& v, const std::string& name) {
  if (!v.is_string()) throw RequestError(name, "'" + name + "' must be a string");
  return v.get<std::string>();
}

}  // namespace

ImageRequest parse_image_request(const std::string& body, const ServeLimits& limits, const ModelConfig& model,
                                 uint64_t random_seed) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw RequestError("", std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw RequestError("", "the body must be a JSON object");
  static const std::set<std::string> known = {"prompt", "n", "size", "response_format", "model", "user", "seed",
                                              "candidates", "temperature", "top_k", "top_p", "cfg_scale"};
  for (const auto& item : j.items())
    if (!known.count(item.key()))
      throw RequestError(item.key(), "unknown field '" + item.key() +
                                         "' (known: prompt, n, size, response_format, seed, candidates, temperature, "
                                         "top_k, top_p, cfg_scale, model, user)");
  ImageRequest r;
  if (!j.contains("prompt")) throw RequestError("prompt", "'prompt' is required");
  r.generate.prompt = string_field(j["prompt"], "prompt");
  if (r.generate.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
    throw RequestError("prompt", "'prompt' is empty");
  if (static_cast<int64_t>(r.generate.prompt.size()) > limits.max_prompt_chars)
    throw RequestError("prompt", "'prompt' is longer than " + std::to_string(limits.max_prompt_chars) + " bytes");
  if (j.contains("n")) r.n = static_cast<int>(integer_field(j["n"], "n", 1, limits.max_n));
  r.candidates = r.n;
  if (j.contains("candidates"))
    r.candidates = static_cast<int>(integer_field(j["candidates"], "candidates", r.n, limits.max_candidates));
  const std::string size = std::to_string(model.vae.image_size) + "x" + std::to_string(model.vae.image_size);
  if (j.contains("size") && string_field(j["size"], "size") != size)
    throw RequestError("size", "size '" + j["size"].get<std::string>() + "' is not available: this model draws " + size +
                                   " only");
  if (j.contains("response_format")) {
    r.response_format = string_field(j["response_format"], "response_format");
    if (r.response_format != "url" && r.response_format != "b64_json")
      throw RequestError("response_format", "'response_format' must be 'url' or 'b64_json'");
  }
  if (j.contains("model")) string_field(j["model"], "model");  // one model per server: any name is it
  if (j.contains("user")) string_field(j["user"], "user");
  r.generate.seed = j.contains("seed") ? static_cast<uint64_t>(integer_field(j["seed"], "seed", 0, int64_t{1} << 53))
                                       : random_seed;
  SamplerSettings& s = r.generate.sampler = model.sample;
  if (j.contains("temperature")) s.temperature = number_field(j["temperature"], "temperature", 0, 10, true);
  if (j.contains("top_k")) s.top_k = static_cast<int>(integer_field(j["top_k"], "top_k", 0, model.vae.vocab));
  if (j.contains("top_p")) s.top_p = number_field(j["top_p"], "top_p", 0, 1);
  if (j.contains("cfg_scale")) s.cfg_scale = number_field(j["cfg_scale"], "cfg_scale", 0, 50);
  r.generate.count = r.candidates;
  r.generate.keep = r.n;
  r.generate.batch = std::min(r.candidates, 8);
  return r;
}

nlohmann::json image_request_json(const ImageRequest& r) {
  const SamplerSettings& s = r.generate.sampler;
  return {{"prompt", r.generate.prompt}, {"n", r.n}, {"candidates", r.candidates}, {"seed", r.generate.seed},
          {"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p}, {"cfg_scale", s.cfg_scale},
          {"response_format", r.response_format}};
}

}  // namespace dalle

#include "dalle/vae/openai_import.h"

#include "dalle/util/torch_api.h"

#include <map>
#include <set>

#include "dalle/io/torch_checkpoint.h"
#include "dalle/io/weights.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

struct Half {
  std::string path;
  std::map<std::string, torch::Tensor> tensors;
  std::set<std::string> dtypes;  // as stored in the file
  int groups = 0, blocks_per_group = 0;
};

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat64: return "float64";
    default: return c10::toString(t);
  }
}

// The number after `prefix` at the start of `s` ("group_3.block_1..." -> 3), or 0.
int number_after(const std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) != 0) return 0;
  size_t i = prefix.size();
  int n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && n < 100000) n = n * 10 + (s[i++] - '0');
  return i < s.size() && s[i] == '.' ? n : 0;
}

Half read_half(const std::string& path, const char* expected_class) {
  const TorchCheckpoint ckpt = torch_checkpoint_load(path);
  Half h;
  h.path = path;
  if (!ckpt.root_class.empty() && ckpt.root_class.find(expected_class) == std::string::npos)
    throw file_error(path, "holds a " + ckpt.root_class + ", expected OpenAI's " + expected_class +
                               " (--encoder takes encoder.pkl, --decoder decoder.pkl)");
  for (const auto& [name, tensor] : ckpt.tensors) {
    h.tensors[name] = tensor;
    h.dtypes.insert(dtype_name(tensor.scalar_type()));
    if (const int g = number_after(name, "blocks.group_")) {
      h.groups = std::max(h.groups, g);
      if (g == 1) h.blocks_per_group = std::max(h.blocks_per_group, number_after(name, "blocks.group_1.block_"));
    }
  }
  if (h.tensors.empty()) throw file_error(path, "holds no tensors");
  return h;
}

const torch::Tensor& require(const Half& h, const std::string& name, int64_t dims) {
  auto it = h.tensors.find(name);
  if (it == h.tensors.end()) throw file_error(h.path, "no tensor '" + name + "': not OpenAI's dVAE layout");
  if (it->second.dim() != dims)
    throw file_error(h.path, "'" + name + "' has " + std::to_string(it->second.dim()) + " dimensions, " +
                                 std::to_string(dims) + " expected");
  return it->second;
}

void check_equal(const std::string& what, int64_t encoder_value, int64_t decoder_value) {
  if (encoder_value != decoder_value)
    throw Error("the encoder and decoder do not belong together: " + what + " is " + std::to_string(encoder_value) +
                " in the encoder, " + std::to_string(decoder_value) + " in the decoder");
}

// Every tensor widened to fp32 and checked against the module the config builds: names, shapes,
// nothing missing, nothing extra (io/weights.h reports every mismatch by name).
void load_half(torch::nn::Module& module, const Half& h) {
  SafeTensors st;
  for (const auto& [name, tensor] : h.tensors) {
    if (!tensor.is_floating_point()) throw file_error(h.path, "'" + name + "' is not a floating-point tensor");
    st.tensors[name] = tensor.to(torch::kFloat32);
  }
  module_load_weights(module, st, h.path);
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

}  // namespace

OpenaiDvae openai_dvae_import(const std::string& encoder_path, const std::string& decoder_path, int image_size,
                              const VaeConfig& reference) {
  const Half enc = read_half(encoder_path, "Encoder");
  const Half dec = read_half(decoder_path, "Decoder");
  const torch::Tensor& enc_in = require(enc, "blocks.input.w", 4);        // [n_hid, channels, 7, 7]
  const torch::Tensor& enc_out = require(enc, "blocks.output.conv.w", 4);  // [vocab, 8 n_hid, 1, 1]
  const torch::Tensor& dec_in = require(dec, "blocks.input.w", 4);        // [n_init, vocab, 1, 1]
  const torch::Tensor& dec_out = require(dec, "blocks.output.conv.w", 4);  // [2 channels, n_hid, 1, 1]
  if (enc.groups == 0 || enc.blocks_per_group == 0) throw file_error(encoder_path, "no blocks.group_1.block_1 tensors");
  if (dec.groups == 0 || dec.blocks_per_group == 0) throw file_error(decoder_path, "no blocks.group_1.block_1 tensors");
  check_equal("the number of groups", enc.groups, dec.groups);
  check_equal("the number of blocks per group", enc.blocks_per_group, dec.blocks_per_group);
  check_equal("n_hid", enc_in.size(0), dec_out.size(1));
  check_equal("the vocabulary", enc_out.size(0), dec_in.size(1));
  check_equal("the number of image channels", enc_in.size(1), dec_out.size(0) / 2);
  if (dec_out.size(0) != 2 * enc_in.size(1))
    throw file_error(decoder_path, "output conv has " + std::to_string(dec_out.size(0)) + " channels, expected 2 x " +
                                       std::to_string(enc_in.size(1)) + " (a mean and a log-scale per channel)");

  OpenaiDvae out;
  VaeConfig& c = out.config;
  c.image_size = image_size;
  c.channels = static_cast<int>(enc_in.size(1));
  c.n_hid = static_cast<int>(enc_in.size(0));
  c.groups = enc.groups;
  c.blocks_per_group = enc.blocks_per_group;
  c.vocab = static_cast<int>(enc_out.size(0));
  c.n_init = static_cast<int>(dec_in.size(0));
  c.eps = 0.1;  // OpenAI's map_pixels
  if (image_size % c.downsample() != 0)
    throw Error("--image-size " + std::to_string(image_size) + " is not a multiple of the dVAE's downsampling, " +
                std::to_string(c.downsample()));
  out.vae = Dvae(c);
  load_half(*out.vae->encoder, enc);
  load_half(*out.vae->decoder, dec);
  out.vae->eval();

  for (const Half* h : {&enc, &dec}) {
    const bool exact = !h->dtypes.count("float64");
    out.notes.push_back(h->path + ": " + std::to_string(h->tensors.size()) + " tensors in " + joined(h->dtypes) +
                        (exact ? ", stored as float32 (every value exactly as in the file)"
                               : ", stored as float32 (float64 values rounded)"));
  }
  std::vector<std::string> diffs;
  const auto compare = [&](const char* name, int ours, int theirs) {
    if (ours != theirs) diffs.push_back(std::string(name) + " " + std::to_string(ours) + " (paper " + std::to_string(theirs) + ")");
  };
  compare("n_hid", c.n_hid, reference.n_hid);
  compare("groups", c.groups, reference.groups);
  compare("blocks_per_group", c.blocks_per_group, reference.blocks_per_group);
  compare("vocab", c.vocab, reference.vocab);
  compare("n_init", c.n_init, reference.n_init);
  compare("channels", c.channels, reference.channels);
  std::string layout;
  for (const std::string& d : diffs) layout += (layout.empty() ? "" : ", ") + d;
  out.notes.push_back(diffs.empty() ? "layout: the paper preset's dVAE, every tensor checked by name and shape"
                                    : "layout differs from the paper preset in " + layout +
                                          "; every tensor checked by name and shape against it");
  return out;
}

}  // namespace dalle

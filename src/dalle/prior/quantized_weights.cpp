#include "dalle/prior/quantized_weights.h"

#include "dalle/util/torch_api.h"

#include "dalle/io/weights.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {
constexpr const char* kScaleSuffix = "_scale";
constexpr const char* kFormatKey = "weights";
}  // namespace

SafeTensors prior_weights_pack(const Prior& prior, WeightFormat format) {
  SafeTensors st;
  module_weights_into(*prior, st);
  st.metadata[kFormatKey] = weight_format_name(format);
  if (format == WeightFormat::fp32) return st;
  for (const std::string& name : prior_quantizable_weights(prior)) {
    const torch::Tensor w = st.tensors.at(name);
    if (format == WeightFormat::bf16) {
      st.tensors[name] = w.to(torch::kBFloat16);
    } else {
      const Int8Weight q = quantize_int8(w);
      st.tensors[name] = q.q;
      st.tensors[name + kScaleSuffix] = q.scale;
    }
  }
  return st;
}

WeightFormat prior_weights_format(const SafeTensors& st, const std::string& source) {
  auto it = st.metadata.find(kFormatKey);
  if (it == st.metadata.end()) return WeightFormat::fp32;
  try {
    return parse_weight_format(it->second);
  } catch (const Error& e) {
    throw file_error(source, std::string("metadata 'weights': ") + e.what());
  }
}

Int8Weights prior_weights_unpack(SafeTensors& st, const std::string& source) {
  Int8Weights int8;
  const std::string suffix = kScaleSuffix;
  for (auto it = st.tensors.begin(); it != st.tensors.end();) {
    const std::string& name = it->first;
    const bool is_scale = name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!is_scale) {
      ++it;
      continue;
    }
    const std::string weight = name.substr(0, name.size() - suffix.size());
    auto w = st.tensors.find(weight);
    if (w == st.tensors.end() || w->second.scalar_type() != torch::kInt8)
      throw file_error(source, "tensor '" + name + "' scales a weight '" + weight + "' that is not stored as I8");
    const torch::Tensor scale = it->second.to(torch::kFloat32);
    if (w->second.dim() != 2 || scale.dim() != 1 || scale.size(0) != w->second.size(0))
      throw file_error(source, "tensor '" + name + "' has shape " + shape_string(scale.sizes()) + ", expected [" +
                                   std::to_string(w->second.dim() == 2 ? w->second.size(0) : 0) + "] (one scale per row of '" +
                                   weight + "')");
    int8[weight] = {w->second, scale};
    w->second = dequantize_int8(int8[weight]);
    st.dtypes[weight] = "F32";
    st.dtypes.erase(name);
    it = st.tensors.erase(it);
  }
  for (const auto& [name, tensor] : st.tensors)
    if (tensor.scalar_type() == torch::kInt8 && !int8.count(name))
      throw file_error(source, "int8 tensor '" + name + "' has no '" + name + suffix + "' scales");
  return int8;
}

}  // namespace dalle

#include "dalle/io/weights.h"

#include "dalle/util/torch_api.h"

#include <set>
#include <sstream>

#include "dalle/util/error.h"

namespace dalle {

std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

void module_weights_into(const torch::nn::Module& module, SafeTensors& st,
                         const std::string& prefix) {
  for (const auto& item : module.named_parameters(true))
    st.tensors[prefix + item.key()] = item.value().detach();
}

void module_load_weights(torch::nn::Module& module, const SafeTensors& st,
                         const std::string& source, const std::string& prefix) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  auto params = module.named_parameters(true);
  for (const auto& item : params) {
    const std::string name = prefix + item.key();
    expected.insert(name);
    auto it = st.tensors.find(name);
    if (it == st.tensors.end()) {
      problems.push_back("missing tensor '" + name + "'");
      continue;
    }
    const torch::Tensor& param = item.value();
    const std::string want = safetensors_dtype_name(param.scalar_type());
    auto dt = st.dtypes.find(name);
    const std::string have = dt != st.dtypes.end() ? dt->second
                                                   : safetensors_dtype_name(it->second.scalar_type());
    // 16-bit floats load into fp32 parameters: bundles may store weights in bf16 or fp16.
    const bool widened = want == "F32" && (have == "BF16" || have == "F16");
    if (have != want && !widened)
      problems.push_back("tensor '" + name + "' has dtype " + have + ", expected " + want);
    if (it->second.sizes() != param.sizes())
      problems.push_back("tensor '" + name + "' has shape " + shape_string(it->second.sizes()) +
                         ", expected " + shape_string(param.sizes()));
  }
  for (const auto& [name, tensor] : st.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0 && !expected.count(name))
      problems.push_back("unexpected tensor '" + name + "'");
  if (!problems.empty()) {
    std::string message = std::to_string(problems.size()) + " weight mismatch(es) with the config:";
    const size_t shown = std::min<size_t>(problems.size(), 12);
    for (size_t i = 0; i < shown; ++i) message += "\n  " + problems[i];
    if (shown < problems.size()) message += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    throw file_error(source, message);
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) item.value().copy_(st.tensors.at(prefix + item.key()));
}

}  // namespace dalle

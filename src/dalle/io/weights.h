// Moving a module's parameters to and from safetensors by name. Loading checks every tensor's
// name, dtype and shape against what the module (built from the config) expects, and reports
// every mismatch by name in one error.
#pragma once
#include <torch/nn/module.h>

#include <string>

#include "dalle/io/safetensors.h"

namespace dalle {

// "[64, 3, 7, 7]": how weight errors and listings print a shape.
std::string shape_string(c10::IntArrayRef sizes);

// Adds `prefix + name` -> parameter (detached) for every parameter of `module`.
void module_weights_into(const torch::nn::Module& module, SafeTensors& st,
                         const std::string& prefix = "");

// Copies `prefix + name` tensors into the module's parameters. Extra tensors under `prefix`
// are errors too. `source` names the file in messages.
void module_load_weights(torch::nn::Module& module, const SafeTensors& st,
                         const std::string& source, const std::string& prefix = "");

}  // namespace dalle

// dalle convert: a PyTorch checkpoint (.pt/.pth/.ckpt/.pkl) to safetensors, read without Python
// and without running anything from the file.
#include "dalle/util/torch_api.h"

#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "dalle/io/safetensors.h"
#include "dalle/io/torch_checkpoint.h"
#include "dalle/io/weights.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle::cli {

namespace {

struct ConvertFlags {
  std::string input;
  std::string out;
  bool list = false;
};

int run_convert(const ConvertFlags& f) {
  const TorchCheckpoint ckpt = torch_checkpoint_load(f.input);
  int64_t elements = 0, bytes = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    elements += t.numel();
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
    if (f.list)
      std::printf("%-60s %-5s %s\n", name.c_str(), safetensors_dtype_name(t.scalar_type()).c_str(), shape_string(t.sizes()).c_str());
  }
  char size[64];
  std::snprintf(size, sizeof(size), "%lld elements, %.1f MB", static_cast<long long>(elements), bytes / 1e6);
  const std::string what = std::to_string(ckpt.tensors.size()) + " tensors (" + size + ") from a " + ckpt.format + " checkpoint" +
                           (ckpt.root_class.empty() ? "" : " of " + ckpt.root_class) +
                           (ckpt.other_values ? ", " + std::to_string(ckpt.other_values) + " non-tensor values left out" : "");
  if (f.out.empty()) {
    if (!f.list) throw Error("convert: give -o OUT.safetensors, or --list to print the tensors");
    std::fprintf(stderr, "convert: %s\n", what.c_str());
    return 0;
  }
  if (ckpt.tensors.empty()) throw file_error(f.input, "holds no tensors: nothing to convert");
  SafeTensors st;
  for (const auto& [name, t] : ckpt.tensors) st.tensors[name] = t.contiguous();
  st.metadata["source"] = std::filesystem::path(f.input).filename().string();
  st.metadata["format"] = "pytorch-" + ckpt.format;
  if (!ckpt.root_class.empty()) st.metadata["class"] = ckpt.root_class;
  safetensors_save(f.out, st);
  std::fprintf(stderr, "convert: %s -> %s\n", what.c_str(), f.out.c_str());
  return 0;
}

}  // namespace

void register_convert(CLI::App& app, Action& action) {
  static ConvertFlags f;
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a PyTorch checkpoint (torch.save: a state dict, a training checkpoint or a pickled module; zip or legacy "
      "format) to safetensors. The pickle is read by our own reader, which calls nothing: a file that would run code "
      "is refused");
  cmd->add_option("input", f.input, "The checkpoint: .pt, .pth, .ckpt, .bin or .pkl")->required();
  cmd->add_option("-o,--output", f.out,
                  "The .safetensors file to write: every tensor under its attribute path (module levels "
                  "_parameters/_modules left out), in its own dtype");
  cmd->add_flag("--list", f.list, "Print each tensor's name, dtype and shape");
  cmd->callback([&action] { action = [] { return run_convert(f); }; });
}

}  // namespace dalle::cli

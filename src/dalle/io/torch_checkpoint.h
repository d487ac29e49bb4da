// PyTorch checkpoints (torch.save files: .pt, .pth, .ckpt, pickled modules such as OpenAI's
// encoder.pkl) read without Python and without running anything from the file (io/torch_pickle.h).
// Both of torch.save's formats: the zip archive of PyTorch >= 1.6 (data.pkl plus one entry per
// storage) and the older single stream (magic number, protocol, system info, the pickle, the
// storage keys, then each storage's bytes).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dalle/io/torch_pickle.h"

namespace dalle {

struct TorchCheckpoint {
  std::string format;      // "zip" or "legacy"
  std::string root_class;  // the pickled object's class ("dall_e.encoder.Encoder"), "" for a dict
  // Every tensor under its attribute path, in the order the pickle holds them: dict keys and
  // module attributes joined by dots, with a module's _parameters, _buffers and _modules
  // levels left out ("blocks.group_1.block_1.res_path.conv_1.w"), list items by index.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  int64_t other_values = 0;  // numbers, strings and the like that are not tensors (not kept)
};

// Throws dalle::Error naming `path` and the problem for anything that is not a readable
// checkpoint: another file type, truncation, a storage type we cannot hold, or a pickle that
// would call something outside the allowlist.
TorchCheckpoint torch_checkpoint_load(const std::string& path);

// The tensors of an unpickled value, named as TorchCheckpoint::tensors describes; `source`
// names the file in errors. Counts the non-tensor leaves into *other_values when given.
std::vector<std::pair<std::string, torch::Tensor>> pickle_named_tensors(const PickleValue& root, const std::string& source,
                                                                        int64_t* other_values = nullptr);

}  // namespace dalle

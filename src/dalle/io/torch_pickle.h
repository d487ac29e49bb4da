// A reader for the part of Python's pickle format that PyTorch checkpoints use. It builds values
// and never calls anything: a checkpoint's pickle names functions (tensor rebuilders, OrderedDict)
// and classes (modules) by "module.name", and a general unpickler would import and call them,
// which lets a file run any code. Here a small allowlist of PyTorch's rebuild functions is
// interpreted by hand, classes become plain records of their __dict__, and a call to anything
// else ("os.system", "builtins.eval") is refused with an error naming it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dalle {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Set, Global, Object, Storage, Tensor, Opaque };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;  // Int that fits in 64 bits
  bool big = false;     // Int that does not: `text` holds its little-endian two's-complement bytes
  double real = 0;
  std::string text;  // String (UTF-8), Bytes; Global and Object: "module.name"; Opaque: what it was
  std::vector<PickleRef> items;                          // Tuple, List, Set
  std::vector<std::pair<PickleRef, PickleRef>> entries;  // Dict, in insertion order
  PickleRef state;       // Object: the state BUILD gave it (for modules, the instance __dict__)
  torch::Tensor tensor;  // Storage: its elements, 1-D; Tensor: the rebuilt view (undefined while
                         // the storages are still unknown, see PersistentLoad)
};

// Turns a persistent id (PyTorch: the tuple ('storage', storage type, key, location, numel, ...))
// into a Storage value. A Storage with an undefined tensor is allowed: tensors built on it are
// undefined too (the legacy format's first pass, before the storages' bytes are read).
using PersistentLoad = std::function<PickleRef(const PickleValue& pid)>;

// Parses one pickle starting at `*offset` in `data`, and moves `*offset` past its STOP opcode.
// `source` names the file in errors. Throws dalle::Error for anything malformed, truncated or
// outside the allowlist.
PickleRef pickle_load(const uint8_t* data, size_t size, size_t* offset, const PersistentLoad& persistent_load,
                      const std::string& source);

// The value of `key` in a Dict whose keys are strings; null when absent or not a Dict.
const PickleValue* pickle_dict_get(const PickleValue& dict, const std::string& key);

// "torch.FloatStorage" -> kFloat, ...; throws for storage types a checkpoint reader cannot hold.
torch::ScalarType pickle_storage_dtype(const std::string& storage_type, const std::string& source);

}  // namespace dalle

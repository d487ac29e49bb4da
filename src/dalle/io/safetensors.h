// Our reader and writer for the safetensors format: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw
// little-endian tensor data. Every field is validated on load, so a truncated or corrupt file
// is a clear error naming the file and tensor, never a crash or silently zero weights.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dalle {

struct SafeTensors {
  std::map<std::string, torch::Tensor> tensors;
  // The dtype each tensor has (or gets) in the file: "F32", "BF16", "U16", ... Tensors without
  // an entry are written in their natural dtype. libtorch 1.13 has no uint16, so U16 tensors
  // live in memory as int32 and are range-checked on write.
  std::map<std::string, std::string> dtypes;
  std::map<std::string, std::string> metadata;
};

// The file dtype name for a libtorch dtype ("F32" for kFloat, ...). Throws for unsupported ones.
std::string safetensors_dtype_name(torch::ScalarType type);

std::vector<uint8_t> safetensors_serialize(const SafeTensors& st);
// `source` names the bytes in error messages (usually the file path).
SafeTensors safetensors_parse(const uint8_t* data, size_t size, const std::string& source);

void safetensors_save(const std::string& path, const SafeTensors& st);  // atomic
SafeTensors safetensors_load(const std::string& path);

}  // namespace dalle

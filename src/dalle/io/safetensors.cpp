#include "dalle/io/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <limits>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType memory_type;  // how the tensor is held in memory
  size_t file_bytes;              // element size in the file
};

const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
      {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
      {"BOOL", torch::kBool, 1},   {"U16", torch::kInt32, 2},
  };
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : dtype_table())
    if (name == d.name) return &d;
  return nullptr;
}

// Checked a*b for sizes read from untrusted headers.
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : dtype_table())
    if (d.memory_type == type && std::strcmp(d.name, "U16") != 0) return d.name;
  throw Error(std::string("safetensors: unsupported tensor dtype ") + c10::toString(type));
}

std::vector<uint8_t> safetensors_serialize(const SafeTensors& st) {
  nlohmann::json header = nlohmann::json::object();
  if (!st.metadata.empty()) header["__metadata__"] = st.metadata;
  std::vector<torch::Tensor> payloads;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : st.tensors) {
    if (name == "__metadata__") throw Error("safetensors: '__metadata__' is not a tensor name");
    auto it = st.dtypes.find(name);
    const std::string dtype =
        it != st.dtypes.end() ? it->second : safetensors_dtype_name(tensor.scalar_type());
    const DtypeInfo* info = find_dtype(dtype);
    if (!info) throw Error("safetensors: tensor '" + name + "': unknown dtype " + dtype);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    if (dtype == "U16") {
      if (t.numel() > 0 && (t.min().item<int64_t>() < 0 || t.max().item<int64_t>() > 65535))
        throw Error("safetensors: tensor '" + name + "' has values outside the U16 range");
      t = t.to(torch::kInt32).contiguous();
      // Narrow int32 to little-endian uint16.
      torch::Tensor narrow = torch::empty({t.numel() * 2}, torch::kUInt8);
      const int32_t* src = t.data_ptr<int32_t>();
      uint8_t* dst = narrow.data_ptr<uint8_t>();
      for (int64_t i = 0; i < t.numel(); ++i) {
        dst[2 * i] = static_cast<uint8_t>(src[i] & 0xff);
        dst[2 * i + 1] = static_cast<uint8_t>((src[i] >> 8) & 0xff);
      }
      t = narrow;
    } else if (t.scalar_type() != info->memory_type) {
      t = t.to(info->memory_type).contiguous();
    }
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    payloads.push_back(t);
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned.
  while ((header_text.size() % 8) != 0) header_text.push_back(' ');
  std::vector<uint8_t> out(8 + header_text.size() + offset);
  uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header_text.data(), header_text.size());
  uint8_t* data = out.data() + 8 + header_text.size();
  for (const auto& t : payloads) {
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (bytes) std::memcpy(data, t.data_ptr(), bytes);
    data += bytes;
  }
  return out;
}

SafeTensors safetensors_parse(const uint8_t* data, size_t size, const std::string& source) {
  if (size < 8) throw file_error(source, "not a safetensors file (shorter than 8 bytes)");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(data[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    throw file_error(source, "corrupt safetensors header length " + std::to_string(header_len) +
                                 " (file has " + std::to_string(size) + " bytes; truncated?)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data + 8, data + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(source, std::string("corrupt safetensors header: ") + e.what());
  }
  if (!header.is_object()) throw file_error(source, "safetensors header is not a JSON object");

  const uint8_t* section = data + 8 + header_len;
  const uint64_t section_size = size - 8 - header_len;
  SafeTensors st;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw file_error(source, "__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          throw file_error(source, "__metadata__ value '" + m.key() + "' is not a string");
        st.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets"))
      throw file_error(source, where + "entry needs dtype, shape and data_offsets");
    if (!entry["dtype"].is_string()) throw file_error(source, where + "dtype is not a string");
    const std::string dtype = entry["dtype"].get<std::string>();
    const DtypeInfo* info = find_dtype(dtype);
    if (!info) throw file_error(source, where + "unsupported dtype " + dtype);
    const nlohmann::json& shape_json = entry["shape"];
    const nlohmann::json& offsets = entry["data_offsets"];
    if (!shape_json.is_array()) throw file_error(source, where + "shape is not an array");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : shape_json) {
      if (!d.is_number_unsigned()) throw file_error(source, where + "shape has a bad dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 48) || mul_overflows(numel, dim, &numel))
        throw file_error(source, where + "shape is too large");
      shape.push_back(static_cast<int64_t>(dim));
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw file_error(source, where + "data_offsets must be two non-negative integers");
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    uint64_t expected = 0;
    if (mul_overflows(numel, info->file_bytes, &expected) || begin > end ||
        end - begin != expected)
      throw file_error(source, where + "data_offsets [" + std::to_string(begin) + ", " +
                                   std::to_string(end) + "] do not match shape and dtype " + dtype);
    if (end > section_size)
      throw file_error(source, where + "data ends at byte " + std::to_string(end) +
                                   " but the data section has " + std::to_string(section_size) +
                                   " bytes (file truncated?)");
    torch::Tensor t;
    if (dtype == "U16") {
      t = torch::empty(shape, torch::kInt32);
      int32_t* dst = t.data_ptr<int32_t>();
      const uint8_t* src = section + begin;
      for (uint64_t i = 0; i < numel; ++i)
        dst[i] = static_cast<int32_t>(src[2 * i]) | (static_cast<int32_t>(src[2 * i + 1]) << 8);
    } else {
      t = torch::empty(shape, info->memory_type);
      if (expected) std::memcpy(t.data_ptr(), section + begin, expected);
    }
    st.tensors[name] = t;
    st.dtypes[name] = dtype;
  }
  return st;
}

void safetensors_save(const std::string& path, const SafeTensors& st) {
  const std::vector<uint8_t> bytes = safetensors_serialize(st);
  write_file_atomic(path, bytes.data(), bytes.size());
}

SafeTensors safetensors_load(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return safetensors_parse(bytes.data(), bytes.size(), path);
}

}  // namespace dalle

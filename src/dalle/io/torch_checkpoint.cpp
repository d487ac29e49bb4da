#include "dalle/io/torch_checkpoint.h"

#include "dalle/util/torch_api.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "dalle/util/error.h"
#include "dalle/util/fs.h"

namespace dalle {

namespace {

using Kind = PickleValue::Kind;

// The persistent id of a storage: ('storage', storage type, key, location, numel[, view]).
struct StorageId {
  torch::ScalarType dtype;
  std::string key;
  int64_t numel;
  const PickleValue* view = nullptr;  // legacy format: (view key, offset, size) or None
};

StorageId parse_storage_id(const PickleValue& pid, const std::string& source) {
  const auto& it = pid.items;
  if (pid.kind != Kind::Tuple || it.size() < 5 || it[0]->kind != Kind::String || it[0]->text != "storage" ||
      it[1]->kind != Kind::Global || it[2]->kind != Kind::String || it[4]->kind != Kind::Int || it[4]->big ||
      it[4]->integer < 0)
    throw file_error(source, "persistent id is not a ('storage', type, key, location, numel) tuple");
  StorageId id{pickle_storage_dtype(it[1]->text, source), it[2]->text, it[4]->integer};
  if (it.size() > 5 && it[5]->kind != Kind::None) id.view = it[5].get();
  return id;
}

// The legacy format also gives each module class a persistent id, ('module', class, source file,
// source), so that torch.load can compare sources; the class is all a reader needs.
PickleRef module_class(const PickleValue& pid) {
  const auto& it = pid.items;
  if (pid.kind == Kind::Tuple && it.size() >= 2 && it[0]->kind == Kind::String && it[0]->text == "module" &&
      it[1]->kind == Kind::Global)
    return it[1];
  return nullptr;
}

PickleRef storage_value(torch::Tensor t) {
  auto v = std::make_shared<PickleValue>();
  v->kind = Kind::Storage;
  v->tensor = std::move(t);
  return v;
}

// Whole entries of a zip archive by name. PyTorch stores them uncompressed; libarchive also
// reads compressed ones, and zip64 for archives over 4 GB.
std::map<std::string, std::vector<uint8_t>> read_zip(const std::string& path) {
  std::unique_ptr<archive, decltype(&archive_read_free)> ar(archive_read_new(), archive_read_free);
  archive_read_support_format_zip_seekable(ar.get());
  const auto bad = [&](const std::string& what) {
    return file_error(path, "not a readable zip checkpoint (" + what + ": " +
                                (archive_error_string(ar.get()) ? archive_error_string(ar.get()) : "unknown error") +
                                "); a truncated or damaged file?");
  };
  if (archive_read_open_filename(ar.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) throw bad("open");
  std::map<std::string, std::vector<uint8_t>> entries;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(ar.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw bad("reading the entry list");
    const std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    std::vector<uint8_t> bytes;
    if (archive_entry_size_is_set(entry)) bytes.reserve(static_cast<size_t>(archive_entry_size(entry)));
    char buf[1 << 16];
    for (;;) {
      const la_ssize_t n = archive_read_data(ar.get(), buf, sizeof(buf));
      if (n < 0) throw bad("reading '" + name + "'");
      if (n == 0) break;
      bytes.insert(bytes.end(), buf, buf + n);
    }
    if (archive_entry_size_is_set(entry) && static_cast<int64_t>(bytes.size()) != archive_entry_size(entry))
      throw file_error(path, "zip entry '" + name + "' is shorter than its header says (truncated file?)");
    entries[name] = std::move(bytes);
  }
  return entries;
}

TorchCheckpoint load_zip(const std::string& path) {
  std::map<std::string, std::vector<uint8_t>> entries = read_zip(path);
  // "archive/data.pkl": the folder name is whatever torch.save chose; storages are beside it.
  std::string prefix;
  const std::vector<uint8_t>* pickle = nullptr;
  for (const auto& [name, bytes] : entries) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
      prefix = name.substr(0, slash + 1);
      pickle = &bytes;
      break;
    }
  }
  if (!pickle)
    throw file_error(path, "zip archive without a data.pkl: not a torch.save checkpoint (a TorchScript or other "
                           "archive?)");
  auto order = entries.find(prefix + "byteorder");
  if (order != entries.end() && std::string(order->second.begin(), order->second.end()) != "little")
    throw file_error(path, "checkpoint saved on a big-endian machine; only little-endian ones are supported");

  std::map<std::string, PickleRef> storages;
  const PersistentLoad load = [&](const PickleValue& pid) -> PickleRef {
    if (PickleRef cls = module_class(pid)) return cls;
    const StorageId id = parse_storage_id(pid, path);
    auto cached = storages.find(id.key);
    if (cached != storages.end()) return cached->second;
    auto entry = entries.find(prefix + "data/" + id.key);
    if (entry == entries.end()) throw file_error(path, "storage '" + id.key + "' is missing from the archive");
    const size_t bytes = static_cast<size_t>(id.numel) * c10::elementSize(id.dtype);
    if (entry->second.size() < bytes)
      throw file_error(path, "storage '" + id.key + "' holds " + std::to_string(entry->second.size()) + " bytes, " +
                                 std::to_string(bytes) + " expected (truncated?)");
    torch::Tensor t = torch::empty({id.numel}, torch::TensorOptions().dtype(id.dtype));
    if (bytes) std::memcpy(t.data_ptr(), entry->second.data(), bytes);
    entry->second = {};  // its bytes now live in the tensor
    return storages[id.key] = storage_value(t);
  };
  size_t offset = 0;
  PickleRef root = pickle_load(pickle->data(), pickle->size(), &offset, load, path);
  TorchCheckpoint out;
  out.format = "zip";
  out.root_class = root->kind == Kind::Object ? root->text : "";
  out.tensors = pickle_named_tensors(*root, path, &out.other_values);
  return out;
}

// The legacy stream. Its storages' bytes follow the pickle that refers to them, so the pickle is
// read twice: once to learn the storages, then again once their bytes are loaded.
TorchCheckpoint load_legacy(const std::string& path) {
  const std::vector<uint8_t> data = read_file_bytes(path);
  size_t offset = 0;
  const PersistentLoad none;
  PickleRef magic = pickle_load(data.data(), data.size(), &offset, none, path);
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c
  if (magic->kind != Kind::Int || !magic->big || magic->text != kMagic)
    throw file_error(path, "a pickle, but not a PyTorch checkpoint (no torch.save magic number)");
  PickleRef protocol = pickle_load(data.data(), data.size(), &offset, none, path);
  if (protocol->kind != Kind::Int || protocol->integer != 1001)
    throw file_error(path, "unsupported legacy checkpoint protocol");
  PickleRef sys_info = pickle_load(data.data(), data.size(), &offset, none, path);
  const PickleValue* little = pickle_dict_get(*sys_info, "little_endian");
  if (little && little->kind == Kind::Bool && !little->boolean)
    throw file_error(path, "checkpoint saved on a big-endian machine; only little-endian ones are supported");

  struct Pending {
    StorageId id;
    PickleRef root;  // the whole storage
    std::map<std::string, PickleRef> views;
  };
  std::map<std::string, Pending> storages;
  const PersistentLoad load = [&](const PickleValue& pid) -> PickleRef {
    if (PickleRef cls = module_class(pid)) return cls;
    const StorageId id = parse_storage_id(pid, path);
    auto [it, fresh] = storages.try_emplace(id.key, Pending{id, storage_value({}), {}});
    Pending& p = it->second;
    if (!id.view) return p.root;
    const auto& v = id.view->items;
    if (id.view->kind != Kind::Tuple || v.size() != 3 || v[0]->kind != Kind::String || v[1]->kind != Kind::Int ||
        v[2]->kind != Kind::Int)
      throw file_error(path, "malformed storage view of '" + id.key + "'");
    PickleRef& view = p.views[v[0]->text];
    if (!view) view = storage_value({});
    if (p.root->tensor.defined()) {
      if (v[1]->integer < 0 || v[2]->integer < 0 || v[1]->integer + v[2]->integer > p.root->tensor.numel())
        throw file_error(path, "storage view outside storage '" + id.key + "'");
      view->tensor = p.root->tensor.narrow(0, v[1]->integer, v[2]->integer);
    }
    return view;
  };
  const size_t main_offset = offset;
  pickle_load(data.data(), data.size(), &offset, load, path);
  PickleRef keys = pickle_load(data.data(), data.size(), &offset, none, path);
  if (keys->kind != Kind::List) throw file_error(path, "storage key list is not a list");
  for (const PickleRef& key : keys->items) {
    if (key->kind != Kind::String) throw file_error(path, "storage key is not a string");
    auto it = storages.find(key->text);
    if (it == storages.end()) throw file_error(path, "storage '" + key->text + "' is listed but never used");
    const StorageId& id = it->second.id;
    if (data.size() - offset < 8) throw file_error(path, "truncated: storage '" + key->text + "' is missing");
    int64_t count = 0;
    std::memcpy(&count, data.data() + offset, 8);
    offset += 8;
    const uint64_t elem = c10::elementSize(id.dtype);
    if (count < 0 || static_cast<uint64_t>(count) > (data.size() - offset) / elem)
      throw file_error(path, "truncated: storage '" + key->text + "' needs " + std::to_string(count) + " elements");
    torch::Tensor t = torch::empty({count}, torch::TensorOptions().dtype(id.dtype));
    if (count) std::memcpy(t.data_ptr(), data.data() + offset, count * elem);
    offset += count * elem;
    it->second.root->tensor = t;
  }
  for (const auto& [key, p] : storages)
    if (!p.root->tensor.defined()) throw file_error(path, "storage '" + key + "' has no data in the file");
  offset = main_offset;
  PickleRef root = pickle_load(data.data(), data.size(), &offset, load, path);
  TorchCheckpoint out;
  out.format = "legacy";
  out.root_class = root->kind == Kind::Object ? root->text : "";
  out.tensors = pickle_named_tensors(*root, path, &out.other_values);
  return out;
}

bool is_module_state(const PickleValue& state) {
  return pickle_dict_get(state, "_parameters") != nullptr || pickle_dict_get(state, "_modules") != nullptr;
}

struct Collector {
  const std::string& source;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<std::string> names;
  std::set<const PickleValue*> on_path;  // guards against cycles
  int64_t other = 0;

  static std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

  void visit_entries(const PickleValue& dict, const std::string& path, int depth) {
    for (const auto& [k, v] : dict.entries) {
      if (k->kind == Kind::String)
        visit(*v, join(path, k->text), depth + 1);
      else if (k->kind == Kind::Int && !k->big)
        visit(*v, join(path, std::to_string(k->integer)), depth + 1);
    }
  }

  void visit(const PickleValue& v, const std::string& path, int depth) {
    if (depth > 100) throw file_error(source, "objects nested more than 100 deep at '" + path + "'");
    if (!on_path.insert(&v).second) return;
    switch (v.kind) {
      case Kind::Tensor:
        if (v.tensor.defined()) {
          const std::string name = path.empty() ? "tensor" : path;
          if (!names.insert(name).second) throw file_error(source, "two tensors are named '" + name + "'");
          out.emplace_back(name, v.tensor);
        }
        break;
      case Kind::Dict: visit_entries(v, path, depth); break;
      case Kind::List:
      case Kind::Tuple:
        for (size_t i = 0; i < v.items.size(); ++i) visit(*v.items[i], join(path, std::to_string(i)), depth + 1);
        break;
      case Kind::Object:
        if (!v.state || v.state->kind != Kind::Dict) break;
        if (is_module_state(*v.state)) {
          // A module: its parameters, buffers and submodules sit directly under its path.
          for (const char* field : {"_parameters", "_buffers", "_modules"})
            if (const PickleValue* d = pickle_dict_get(*v.state, field)) visit_entries(*d, path, depth);
          for (const auto& [k, value] : v.state->entries)
            if (k->kind == Kind::String && !k->text.empty() && k->text[0] != '_') visit(*value, join(path, k->text), depth + 1);
        } else {
          visit_entries(*v.state, path, depth);
        }
        break;
      case Kind::None:
      case Kind::Global:
      case Kind::Storage: break;
      default: ++other;
    }
    on_path.erase(&v);
  }
};

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> pickle_named_tensors(const PickleValue& root, const std::string& source,
                                                                        int64_t* other_values) {
  Collector c{source, {}, {}, {}, 0};
  c.visit(root, "", 0);
  if (other_values) *other_values = c.other;
  return std::move(c.out);
}

TorchCheckpoint torch_checkpoint_load(const std::string& path) {
  if (!path_exists(path)) throw file_error(path, "no such file");
  if (is_directory(path)) throw file_error(path, "a folder, not a checkpoint file");
  unsigned char head[512] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof(head));
  const std::streamsize got = in.gcount();
  if (got >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return load_zip(path);
  if (got >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return load_legacy(path);
  if (got >= 262 && std::memcmp(head + 257, "ustar", 5) == 0)
    throw file_error(path, "a tar archive: PyTorch's tar checkpoint format (before version 0.4) is not supported; "
                           "load and save it again with a newer PyTorch");
  if (got == 0) throw file_error(path, "empty file");
  throw file_error(path, "not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle stream)");
}

}  // namespace dalle

#include "dalle/io/torch_pickle.h"

#include "dalle/util/torch_api.h"

#include <cstring>
#include <unordered_map>

#include "dalle/util/error.h"

namespace dalle {

namespace {

using Kind = PickleValue::Kind;

PickleRef make(Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

PickleRef make_int(int64_t i) {
  PickleRef v = make(Kind::Int);
  v->integer = i;
  return v;
}

PickleRef make_text(Kind kind, std::string text) {
  PickleRef v = make(kind);
  v->text = std::move(text);
  return v;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "global";
    case Kind::Object: return "object";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
    case Kind::Opaque: return "value";
  }
  return "value";
}

// Latin-1 bytes from the UTF-8 text Python wrote for `_codecs.encode(str, "latin1")`, the way
// protocol 2 stores a bytes object.
std::string utf8_to_latin1(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      out += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
    } else {
      throw Error("bytes encoded with a character outside latin-1");
    }
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, size_t offset, const PersistentLoad& persistent_load,
            const std::string& source)
      : data_(data), size_(size), pos_(offset), persistent_load_(persistent_load), source_(source) {}

  PickleRef run();
  size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw file_error(source_, "pickle at byte " + std::to_string(op_pos_) + ": " + problem);
  }
  void need(size_t n) const {
    if (n > size_ - pos_) throw file_error(source_, "truncated pickle (ends inside the data at byte " + std::to_string(size_) + ")");
  }
  uint64_t read_le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string read_bytes(uint64_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string read_line() {
    const void* nl = pos_ < size_ ? std::memchr(data_ + pos_, '\n', size_ - pos_) : nullptr;
    if (!nl) need(size_ - pos_ + 1);
    const size_t end = static_cast<const uint8_t*>(nl) - data_;
    std::string s(reinterpret_cast<const char*>(data_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }

  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    PickleRef v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleRef& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  // The values pushed since the last MARK, which is removed.
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  PickleRef memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    return it->second;
  }
  PickleRef long_from_bytes(const std::string& bytes);
  PickleRef global(const std::string& module, const std::string& name) {
    if (module.empty() || name.empty() || module.size() > 256 || name.size() > 256) fail("malformed GLOBAL");
    // Protocol 2 writes Python 2's names for the built-in modules.
    const std::string m = module == "__builtin__" ? "builtins" : module == "copy_reg" ? "copyreg" : module;
    return make_text(Kind::Global, m + "." + name);
  }
  void set_items(PickleValue& dict, const std::vector<PickleRef>& kv);
  void add_items(PickleValue& target, const std::vector<PickleRef>& values);
  PickleRef call(const PickleRef& callable, const PickleRef& args);
  PickleRef new_object(const PickleRef& cls);
  PickleRef rebuild_tensor(const std::vector<PickleRef>& args);
  void build(const PickleRef& object, const PickleRef& state);
  int64_t as_int(const PickleRef& v, const char* what) const {
    if (v->kind == Kind::Bool) return v->boolean;
    if (v->kind != Kind::Int || v->big) fail(std::string(what) + " is not an integer");
    return v->integer;
  }

  const uint8_t* data_;
  size_t size_, pos_, op_pos_ = 0;
  const PersistentLoad& persistent_load_;
  const std::string& source_;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
};

PickleRef Unpickler::long_from_bytes(const std::string& bytes) {
  PickleRef v = make(Kind::Int);
  if (bytes.size() > 8) {
    v->big = true;
    v->text = bytes;
    return v;
  }
  uint64_t u = 0;
  for (size_t i = 0; i < bytes.size(); ++i) u |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (!bytes.empty() && bytes.size() < 8 && (static_cast<unsigned char>(bytes.back()) & 0x80))
    u |= ~uint64_t{0} << (8 * bytes.size());  // sign-extend
  v->integer = static_cast<int64_t>(u);
  return v;
}

void Unpickler::set_items(PickleValue& dict, const std::vector<PickleRef>& kv) {
  if (kv.size() % 2) fail("SETITEMS with an odd number of values");
  if (dict.kind == Kind::Object) return;  // a dict subclass's items we do not need
  if (dict.kind != Kind::Dict) fail(std::string("SETITEM on a ") + kind_name(dict.kind));
  for (size_t i = 0; i < kv.size(); i += 2) {
    bool replaced = false;
    if (kv[i]->kind == Kind::String || kv[i]->kind == Kind::Int)
      for (auto& [k, v] : dict.entries)
        if (k->kind == kv[i]->kind && k->text == kv[i]->text && k->integer == kv[i]->integer) {
          v = kv[i + 1];
          replaced = true;
        }
    if (!replaced) dict.entries.emplace_back(kv[i], kv[i + 1]);
  }
}

void Unpickler::add_items(PickleValue& target, const std::vector<PickleRef>& values) {
  if (target.kind == Kind::Object) return;  // a list subclass's items
  if (target.kind != Kind::List && target.kind != Kind::Set) fail(std::string("APPEND on a ") + kind_name(target.kind));
  target.items.insert(target.items.end(), values.begin(), values.end());
}

// What NEWOBJ, OBJ and INST make of a class: a record that BUILD fills with the instance's
// state. Nothing of the class runs.
PickleRef Unpickler::new_object(const PickleRef& cls) {
  if (cls->kind != Kind::Global) fail(std::string("NEWOBJ on a ") + kind_name(cls->kind) + ", not a class");
  if (cls->text == "collections.OrderedDict" || cls->text == "builtins.dict") return make(Kind::Dict);
  if (cls->text == "builtins.set" || cls->text == "builtins.frozenset") return make(Kind::Set);
  return make_text(Kind::Object, cls->text);
}

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
// and the older _rebuild_tensor(storage, offset, size, stride): a strided view of the storage.
PickleRef Unpickler::rebuild_tensor(const std::vector<PickleRef>& args) {
  if (args.size() < 4) fail("tensor rebuild with " + std::to_string(args.size()) + " arguments");
  const PickleRef& storage = args[0];
  if (storage->kind != Kind::Storage) fail("tensor rebuild on a " + std::string(kind_name(storage->kind)) + ", not a storage");
  const int64_t offset = as_int(args[1], "storage offset");
  if (args[2]->kind != Kind::Tuple || args[3]->kind != Kind::Tuple || args[2]->items.size() != args[3]->items.size())
    fail("tensor rebuild: size and stride are not tuples of one length");
  std::vector<int64_t> sizes, strides;
  int64_t last = offset;  // the highest element index the view touches
  bool empty = false;
  for (size_t i = 0; i < args[2]->items.size(); ++i) {
    sizes.push_back(as_int(args[2]->items[i], "tensor size"));
    strides.push_back(as_int(args[3]->items[i], "tensor stride"));
    if (sizes.back() < 0 || strides.back() < 0 || sizes.back() > (int64_t{1} << 40) || strides.back() > (int64_t{1} << 40))
      fail("tensor rebuild: size or stride out of range");
    if (sizes.back() == 0) empty = true;
    last += (sizes.back() - 1) * strides.back();
  }
  PickleRef out = make(Kind::Tensor);
  if (!storage->tensor.defined()) return out;
  const int64_t numel = storage->tensor.numel();
  if (empty) {
    out->tensor = torch::empty(sizes, storage->tensor.options());
    return out;
  }
  if (offset < 0 || last >= numel)
    fail("tensor reaches element " + std::to_string(last) + " of a storage of " + std::to_string(numel));
  out->tensor = storage->tensor.as_strided(sizes, strides, offset);
  return out;
}

// REDUCE: the only calls a checkpoint needs, done by hand; anything else is refused by name.
PickleRef Unpickler::call(const PickleRef& callable, const PickleRef& args_value) {
  if (callable->kind != Kind::Global) fail(std::string("call of a ") + kind_name(callable->kind));
  if (args_value->kind != Kind::Tuple) fail("call of " + callable->text + " with arguments that are not a tuple");
  const std::string& f = callable->text;
  const std::vector<PickleRef>& args = args_value->items;
  if (f == "collections.OrderedDict") {
    PickleRef d = make(Kind::Dict);
    if (!args.empty()) {
      if (args[0]->kind != Kind::List) fail("OrderedDict from a " + std::string(kind_name(args[0]->kind)));
      for (const PickleRef& pair : args[0]->items) {
        if ((pair->kind != Kind::Tuple && pair->kind != Kind::List) || pair->items.size() != 2) fail("OrderedDict item is not a pair");
        set_items(*d, pair->items);
      }
    }
    return d;
  }
  if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
    if (args.empty() || args[0]->kind != Kind::Tensor) fail(f + " of something that is not a tensor");
    return args[0];
  }
  if (f == "torch._tensor._rebuild_from_type_v2" || f == "torch._tensor._rebuild_from_type") {
    // (rebuild function, tensor subclass, its arguments[, state]): the tensor without the subclass.
    if (args.size() < 3) fail(f + " with " + std::to_string(args.size()) + " arguments");
    return call(args[0], args[2]);
  }
  if (f == "torch.jit._pickle.restore_type_tag") {  // libtorch's pickle_save: (value, type name) -> value
    if (args.empty()) fail(f + " without a value");
    return args[0];
  }
  if (f == "torch.device") {
    std::string where;
    for (const PickleRef& a : args) where += (where.empty() ? "" : ":") + (a->kind == Kind::String ? a->text : std::to_string(a->integer));
    return make_text(Kind::Opaque, "device(" + where + ")");
  }
  if (f == "torch.Size") {
    if (args.size() != 1 || args[0]->kind != Kind::Tuple) fail("torch.Size of something that is not a tuple");
    return args[0];
  }
  if (f == "builtins.set" || f == "builtins.frozenset") {
    PickleRef s = make(Kind::Set);
    if (!args.empty() && (args[0]->kind == Kind::List || args[0]->kind == Kind::Tuple)) s->items = args[0]->items;
    return s;
  }
  if (f == "_codecs.encode") {
    if (args.empty() || args[0]->kind != Kind::String) fail("_codecs.encode of a non-string");
    try {
      return make_text(Kind::Bytes, utf8_to_latin1(args[0]->text));
    } catch (const Error& e) {
      fail(e.what());
    }
  }
  if (f == "copyreg._reconstructor") {  // protocols 0 and 1
    if (args.empty()) fail(f + " without a class");
    return new_object(args[0]);
  }
  fail("refusing to call " + f + ": not something a PyTorch checkpoint needs (a pickle that calls it can run "
       "arbitrary code; nothing was run)");
}

void Unpickler::build(const PickleRef& object, const PickleRef& state) {
  switch (object->kind) {
    case Kind::Object:
      // (state dict, slot dict) for classes with __slots__; the first is the __dict__.
      object->state = state->kind == Kind::Tuple && state->items.size() == 2 ? state->items[0] : state;
      return;
    case Kind::Dict:    // OrderedDict attributes such as a state dict's _metadata
    case Kind::Tensor:  // Python-side tensor attributes
    case Kind::Set:
      return;
    default:
      fail(std::string("BUILD on a ") + kind_name(object->kind));
  }
}

PickleRef Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    need(1);
    const uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = read_le(1);
        if (proto > 5) fail("pickle protocol " + std::to_string(proto) + " is newer than 5");
        break;
      }
      case 0x95: read_le(8); break;  // FRAME: only a read-ahead hint
      case '.': {                    // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return stack_.back();
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                             // POP
      case '1': pop_mark(); break;                        // POP_MARK
      case '2': stack_.push_back(top()); break;           // DUP
      case 'N': stack_.push_back(make(Kind::None)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        PickleRef v = make(Kind::Bool);
        v->boolean = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(read_le(4)))); break;  // BININT
      case 'K': stack_.push_back(make_int(static_cast<int64_t>(read_le(1)))); break;  // BININT1
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(read_le(2)))); break;  // BININT2
      case 0x8a: stack_.push_back(long_from_bytes(read_bytes(read_le(1)))); break;    // LONG1
      case 0x8b: stack_.push_back(long_from_bytes(read_bytes(read_le(4)))); break;    // LONG4
      case 'I':
      case 'L': {  // INT, LONG: decimal text ("01"/"00" are True/False in protocol 0)
        std::string line = read_line();
        if (!line.empty() && line.back() == 'L') line.pop_back();
        if (op == 'I' && (line == "01" || line == "00")) {
          PickleRef v = make(Kind::Bool);
          v->boolean = line == "01";
          stack_.push_back(v);
          break;
        }
        try {
          size_t used = 0;
          const long long i = std::stoll(line, &used);
          if (used != line.size()) throw std::invalid_argument(line);
          stack_.push_back(make_int(i));
        } catch (const std::exception&) {
          fail("integer '" + line.substr(0, 40) + "' is malformed or too large");
        }
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | data_[pos_ + i];
        pos_ += 8;
        PickleRef v = make(Kind::Float);
        std::memcpy(&v->real, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'F': {  // FLOAT: text
        const std::string line = read_line();
        PickleRef v = make(Kind::Float);
        try {
          v->real = std::stod(line);
        } catch (const std::exception&) {
          fail("float '" + line.substr(0, 40) + "' is malformed");
        }
        stack_.push_back(v);
        break;
      }
      case 'X': stack_.push_back(make_text(Kind::String, read_bytes(read_le(4)))); break;     // BINUNICODE
      case 0x8c: stack_.push_back(make_text(Kind::String, read_bytes(read_le(1)))); break;    // SHORT_BINUNICODE
      case 0x8d: stack_.push_back(make_text(Kind::String, read_bytes(read_le(8)))); break;    // BINUNICODE8
      case 'T': stack_.push_back(make_text(Kind::String, read_bytes(read_le(4)))); break;     // BINSTRING
      case 'U': stack_.push_back(make_text(Kind::String, read_bytes(read_le(1)))); break;     // SHORT_BINSTRING
      case 'B': stack_.push_back(make_text(Kind::Bytes, read_bytes(read_le(4)))); break;      // BINBYTES
      case 'C': stack_.push_back(make_text(Kind::Bytes, read_bytes(read_le(1)))); break;      // SHORT_BINBYTES
      case 0x8e:                                                                              // BINBYTES8
      case 0x96: stack_.push_back(make_text(Kind::Bytes, read_bytes(read_le(8)))); break;     // BYTEARRAY8
      case 'S': {  // STRING: a quoted Python literal; checkpoints only hold plain ones
        std::string line = read_line();
        if (line.size() < 2 || (line[0] != '\'' && line[0] != '"') || line.back() != line[0]) fail("malformed STRING");
        stack_.push_back(make_text(Kind::String, line.substr(1, line.size() - 2)));
        break;
      }
      case 'V': stack_.push_back(make_text(Kind::String, read_line())); break;  // UNICODE (ASCII ones)
      case ')': stack_.push_back(make(Kind::Tuple)); break;                     // EMPTY_TUPLE
      case ']': stack_.push_back(make(Kind::List)); break;                      // EMPTY_LIST
      case '}': stack_.push_back(make(Kind::Dict)); break;                      // EMPTY_DICT
      case 0x8f: stack_.push_back(make(Kind::Set)); break;                      // EMPTY_SET
      case 't':
      case 'l':
      case 0x91: {  // TUPLE, LIST, FROZENSET: from the values since MARK
        PickleRef v = make(op == 't' ? Kind::Tuple : op == 'l' ? Kind::List : Kind::Set);
        v->items = pop_mark();
        stack_.push_back(v);
        break;
      }
      case 'd': {  // DICT
        PickleRef v = make(Kind::Dict);
        set_items(*v, pop_mark());
        stack_.push_back(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        if (stack_.size() < n + (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
        PickleRef v = make(Kind::Tuple);
        v->items.assign(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(v);
        break;
      }
      case 'a': {  // APPEND
        PickleRef v = pop();
        add_items(*top(), {v});
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS, ADDITEMS
        std::vector<PickleRef> values = pop_mark();
        add_items(*top(), values);
        break;
      }
      case 's': {  // SETITEM
        PickleRef value = pop();
        PickleRef key = pop();
        set_items(*top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<PickleRef> kv = pop_mark();
        set_items(*top(), kv);
        break;
      }
      case 'q': memo_put(read_le(1)); break;                   // BINPUT
      case 'r': memo_put(read_le(4)); break;                   // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;                // MEMOIZE
      case 'h': stack_.push_back(memo_get(read_le(1))); break;  // BINGET
      case 'j': stack_.push_back(memo_get(read_le(4))); break;  // LONG_BINGET
      case 'p':
      case 'g': {  // PUT, GET: decimal text
        const std::string line = read_line();
        uint64_t index = 0;
        try {
          index = std::stoull(line);
        } catch (const std::exception&) {
          fail("malformed memo index");
        }
        if (op == 'p')
          memo_put(index);
        else
          stack_.push_back(memo_get(index));
        break;
      }
      case 'c': {  // GLOBAL module\nname\n
        const std::string module = read_line();
        const std::string name = read_line();
        stack_.push_back(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleRef name = pop();
        PickleRef module = pop();
        if (module->kind != Kind::String || name->kind != Kind::String) fail("STACK_GLOBAL of non-strings");
        stack_.push_back(global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        PickleRef args = pop();
        PickleRef callable = pop();
        stack_.push_back(call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ cls args
        pop();
        PickleRef cls = pop();
        stack_.push_back(new_object(cls));
        break;
      }
      case 0x92: {  // NEWOBJ_EX cls args kwargs
        pop();
        pop();
        PickleRef cls = pop();
        stack_.push_back(new_object(cls));
        break;
      }
      case 'o': {  // OBJ: MARK cls args...
        std::vector<PickleRef> values = pop_mark();
        if (values.empty()) fail("OBJ without a class");
        stack_.push_back(new_object(values[0]));
        break;
      }
      case 'i': {  // INST module\nname\n, MARK args...
        const std::string module = read_line();
        const std::string name = read_line();
        pop_mark();
        stack_.push_back(new_object(global(module, name)));
        break;
      }
      case 'b': {  // BUILD
        PickleRef state = pop();
        build(top(), state);
        break;
      }
      case 'Q': {  // BINPERSID
        PickleRef pid = pop();
        if (!persistent_load_) fail("persistent id in a pickle that cannot have one");
        stack_.push_back(persistent_load_(*pid));
        break;
      }
      case 'P': {  // PERSID: a text id
        PickleRef pid = make_text(Kind::String, read_line());
        if (!persistent_load_) fail("persistent id in a pickle that cannot have one");
        stack_.push_back(persistent_load_(*pid));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84: fail("extension registry opcodes (EXT1/2/4) are not used by checkpoints");
      case 0x97:
      case 0x98: fail("out-of-band buffers are not used by checkpoints");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        fail(std::string("unknown opcode ") + hex);
      }
    }
    if (stack_.size() > (size_t{1} << 24)) fail("more than 16M values on the stack");
  }
}

}  // namespace

PickleRef pickle_load(const uint8_t* data, size_t size, size_t* offset, const PersistentLoad& persistent_load,
                      const std::string& source) {
  Unpickler u(data, size, *offset, persistent_load, source);
  PickleRef v = u.run();
  *offset = u.position();
  return v;
}

const PickleValue* pickle_dict_get(const PickleValue& dict, const std::string& key) {
  if (dict.kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : dict.entries)
    if (k->kind == Kind::String && k->text == key) return v.get();
  return nullptr;
}

torch::ScalarType pickle_storage_dtype(const std::string& storage_type, const std::string& source) {
  static const std::vector<std::pair<const char*, torch::ScalarType>> table = {
      {"torch.FloatStorage", torch::kFloat32},    {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},     {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},       {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},      {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},       {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kUInt8},
  };
  for (const auto& [name, type] : table)
    if (storage_type == name) return type;
  throw file_error(source, "tensors stored as " + storage_type +
                               " are not supported (float64/32/16, bfloat16, int64/32/16/8, uint8 and bool are)");
}

}  // namespace dalle

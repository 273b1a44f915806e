// GGUF reader. Every length, count and offset read from the file is checked against the bytes
// that remain before anything is allocated or read, so a hostile file costs at most its own size.
#include "flowrank/engine/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include "flowrank/common/error.hpp"
#include "quant_types.hpp"

namespace flowrank::engine {

namespace {

constexpr uint64_t kMaxTensorElements = uint64_t{1} << 56;  // far above any real tensor
constexpr uint32_t kMaxDims = 4;                            // GGML_MAX_DIMS

const char* value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
      return "u8";
    case GgufValueType::kI8:
      return "i8";
    case GgufValueType::kU16:
      return "u16";
    case GgufValueType::kI16:
      return "i16";
    case GgufValueType::kU32:
      return "u32";
    case GgufValueType::kI32:
      return "i32";
    case GgufValueType::kF32:
      return "f32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kU64:
      return "u64";
    case GgufValueType::kI64:
      return "i64";
    case GgufValueType::kF64:
      return "f64";
  }
  return "?";
}

// Smallest encoding of one array element: bounds `count` before reserving.
uint64_t min_encoded_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
    case GgufValueType::kString:
      return 8;  // the length prefix
    case GgufValueType::kArray:
      return 12;  // element type + count
  }
  return 1;
}

const char* variant_kind(const GgufValue& v) {
  switch (v.index()) {
    case 0:
    case 1:
      return "integer";
    case 2:
      return "float";
    case 3:
      return "bool";
    case 4:
      return "string";
    default:
      return "array";
  }
}

}  // namespace

std::size_t GgufArray::size() const {
  return ints.size() + floats.size() + strings.size() + arrays.size();
}

struct GgufParser {
  std::string name;  // the file, for messages
  const unsigned char* base = nullptr;
  uint64_t size = 0;
  uint64_t pos = 0;

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(name, problem); }

  uint64_t remaining() const { return size - pos; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      fail("truncated: " + what + " at offset " + std::to_string(pos) + " needs " +
           std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left");
    }
  }

  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const uint64_t len = read<uint64_t>(what + " length");
    if (len > remaining()) {
      fail(what + ": string length " + std::to_string(len) + " exceeds the " +
           std::to_string(remaining()) + " bytes left at offset " + std::to_string(pos));
    }
    std::string s(reinterpret_cast<const char*>(base + pos), static_cast<std::size_t>(len));
    pos += len;
    return s;
  }

  GgufValueType read_value_type(const std::string& what) {
    const uint32_t t = read<uint32_t>(what + " type");
    if (t > static_cast<uint32_t>(GgufValueType::kF64)) {
      fail(what + ": unknown value type " + std::to_string(t));
    }
    return static_cast<GgufValueType>(t);
  }

  GgufValue read_value(GgufValueType t, const std::string& what) {
    switch (t) {
      case GgufValueType::kU8:
        return int64_t{read<uint8_t>(what)};
      case GgufValueType::kI8:
        return int64_t{read<int8_t>(what)};
      case GgufValueType::kU16:
        return int64_t{read<uint16_t>(what)};
      case GgufValueType::kI16:
        return int64_t{read<int16_t>(what)};
      case GgufValueType::kU32:
        return int64_t{read<uint32_t>(what)};
      case GgufValueType::kI32:
        return int64_t{read<int32_t>(what)};
      case GgufValueType::kI64:
        return read<int64_t>(what);
      case GgufValueType::kU64:
        return read<uint64_t>(what);
      case GgufValueType::kF32:
        return double{read<float>(what)};
      case GgufValueType::kF64:
        return read<double>(what);
      case GgufValueType::kBool:
        return read<uint8_t>(what) != 0;
      case GgufValueType::kString:
        return read_string(what);
      case GgufValueType::kArray:
        return read_array(what, 0);
    }
    fail(what + ": unknown value type");
  }

  GgufArray read_array(const std::string& what, int depth) {
    GgufArray arr;
    arr.type = read_value_type(what + " element");
    if (arr.type == GgufValueType::kArray && depth >= 1) {
      fail(what + ": arrays nested deeper than one level");
    }
    const uint64_t count = read<uint64_t>(what + " count");
    const uint64_t min = min_encoded_size(arr.type);
    if (count > remaining() / min) {
      fail(what + ": array count " + std::to_string(count) + " of " + value_type_name(arr.type) +
           " exceeds the " + std::to_string(remaining()) + " bytes left");
    }
    const auto n = static_cast<std::size_t>(count);
    switch (arr.type) {
      case GgufValueType::kString:
        arr.strings.reserve(n);
        for (std::size_t i = 0; i < n; ++i) arr.strings.push_back(read_string(what));
        break;
      case GgufValueType::kArray:
        arr.arrays.reserve(n);
        for (std::size_t i = 0; i < n; ++i) arr.arrays.push_back(read_array(what, depth + 1));
        break;
      case GgufValueType::kF32:
      case GgufValueType::kF64:
        arr.floats.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          arr.floats.push_back(std::get<double>(read_value(arr.type, what)));
        }
        break;
      case GgufValueType::kU64:
        arr.ints.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          const auto v = read<uint64_t>(what);
          if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            fail(what + ": u64 array element " + std::to_string(v) + " is too large");
          }
          arr.ints.push_back(static_cast<int64_t>(v));
        }
        break;
      case GgufValueType::kBool:
        arr.ints.reserve(n);
        for (std::size_t i = 0; i < n; ++i) arr.ints.push_back(read<uint8_t>(what) != 0 ? 1 : 0);
        break;
      default:
        arr.ints.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          arr.ints.push_back(std::get<int64_t>(read_value(arr.type, what)));
        }
        break;
    }
    return arr;
  }

  void parse(GgufFile& f) {
    const auto [n_tensors, n_kv] = parse_header(f);
    parse_metadata(f, n_kv);
    std::set<std::string> names;
    f.tensors_.reserve(static_cast<std::size_t>(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo ti = parse_tensor_info(f, i);
      if (!names.insert(ti.name).second) fail("tensor " + ti.name + ": duplicate tensor name");
      f.tensors_.push_back(std::move(ti));
    }
    place_tensor_data(f);
  }

  // Magic, version and the two counts (checked against the bytes left).
  std::pair<uint64_t, uint64_t> parse_header(GgufFile& f) {
    need(4, "magic");
    if (std::memcmp(base, "GGUF", 4) != 0) fail("not a GGUF file (bad magic)");
    pos = 4;
    const uint32_t version = read<uint32_t>("version");
    if (version != 2 && version != 3) {
      const uint32_t swapped = __builtin_bswap32(version);
      if (swapped == 2 || swapped == 3) fail("big-endian GGUF files are not supported");
      fail("unsupported GGUF version " + std::to_string(version) + ", expected 2 or 3");
    }
    f.version_ = version;
    const uint64_t n_tensors = read<uint64_t>("tensor count");
    const uint64_t n_kv = read<uint64_t>("metadata count");
    // Minimal encodings: a KV is key length + value type + 1 byte; a tensor info is name length +
    // n_dims + type + offset.
    if (n_kv > remaining() / 13) {
      fail("truncated or corrupt: metadata count " + std::to_string(n_kv) +
           " needs more than the " + std::to_string(remaining()) + " bytes left");
    }
    if (n_tensors > remaining() / 24) {
      fail("truncated or corrupt: tensor count " + std::to_string(n_tensors) +
           " needs more than the " + std::to_string(remaining()) + " bytes left");
    }
    return {n_tensors, n_kv};
  }

  // Every key/value pair, then the alignment they may set.
  void parse_metadata(GgufFile& f, uint64_t n_kv) {
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key = read_string("metadata key #" + std::to_string(i));
      const std::string what = "metadata " + key;
      const GgufValueType t = read_value_type(what);
      GgufValue v = read_value(t, what);
      if (f.metadata_.count(key) != 0) fail(what + ": duplicate key");
      f.metadata_.emplace(std::move(key), std::move(v));
    }

    if (auto it = f.metadata_.find("general.alignment"); it != f.metadata_.end()) {
      const auto* a = std::get_if<int64_t>(&it->second);
      if (a == nullptr || *a <= 0 || *a > (1 << 30) || (*a & (*a - 1)) != 0) {
        fail("metadata general.alignment: expected a power of two, found " +
             (a ? std::to_string(*a) : std::string(variant_kind(it->second))));
      }
      f.alignment_ = static_cast<uint32_t>(*a);
    }
  }

  GgufTensorInfo parse_tensor_info(const GgufFile& f, uint64_t i) {
    GgufTensorInfo ti;
    ti.name = read_string("tensor #" + std::to_string(i) + " name");
    const std::string what = "tensor " + ti.name;
    const uint32_t n_dims = read<uint32_t>(what + " dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      fail(what + ": " + std::to_string(n_dims) + " dimensions, expected 1 to 4");
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = read<uint64_t>(what + " dimension");
      if (dim == 0 || dim > kMaxTensorElements || elements > kMaxTensorElements / dim) {
        fail(what + ": dimension " + std::to_string(d) + " of " + std::to_string(dim) +
             " is out of range");
      }
      elements *= dim;
      ti.dims.push_back(static_cast<int64_t>(dim));
    }
    const uint32_t type_id = read<uint32_t>(what + " type");
    const auto* traits = find_quant_traits(type_id);
    if (traits == nullptr) {
      const char* known = ggml_type_name(type_id);
      if (known != nullptr) {
        fail(what + ": type " + known + " (id " + std::to_string(type_id) +
             ") is not supported; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K");
      }
      fail(what + ": unknown tensor type id " + std::to_string(type_id));
    }
    ti.type = static_cast<TensorType>(type_id);
    if (static_cast<uint64_t>(ti.dims[0]) % traits->block_elements != 0) {
      fail(what + ": row length " + std::to_string(ti.dims[0]) + " is not a multiple of " +
           traits->name + "'s block of " + std::to_string(traits->block_elements));
    }
    ti.nbytes = static_cast<std::size_t>(elements / traits->block_elements * traits->block_bytes);
    ti.offset = read<uint64_t>(what + " offset");
    if (ti.offset % f.alignment_ != 0) {
      fail(what + ": data offset " + std::to_string(ti.offset) + " is not aligned to " +
           std::to_string(f.alignment_));
    }
    return ti;
  }

  // The data section follows the infos at the next aligned offset; every tensor must lie in it.
  void place_tensor_data(GgufFile& f) {
    const uint64_t align = f.alignment_;
    const uint64_t data_offset = (pos + align - 1) / align * align;
    f.data_offset_ = data_offset;
    if (f.tensors_.empty()) return;
    if (data_offset > size) {
      fail("truncated: tensor data section starts at offset " + std::to_string(data_offset) +
           " but the file has " + std::to_string(size) + " bytes");
    }
    const uint64_t data_size = size - data_offset;
    for (auto& ti : f.tensors_) {
      if (ti.offset > data_size || ti.nbytes > data_size - ti.offset) {
        fail("tensor " + ti.name + ": " + std::to_string(ti.nbytes) + " bytes of data at offset " +
             std::to_string(ti.offset) + " run past the end of the file (the data section holds " +
             std::to_string(data_size) + " bytes)");
      }
      ti.data = base + data_offset + ti.offset;
    }
  }
};

GgufFile::~GgufFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

// Builds GgufFile objects (whose constructor is private) over a mapping they then own; on a parse
// error the half-built file's destructor unmaps it.
struct GgufFileFactory {
  static std::shared_ptr<const GgufFile> adopt(const std::filesystem::path& path, void* map,
                                               std::size_t size) {
    std::shared_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    f->map_ = map;
    f->map_size_ = size;
    GgufParser p;
    p.name = path.string();
    p.base = static_cast<const unsigned char*>(map);
    p.size = size;
    p.parse(*f);
    return f;
  }
};

std::shared_ptr<const GgufFile> GgufFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw InputError(name, "no such file");
    throw InputError(name, std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw InputError(name, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(name, "not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw InputError(name, "truncated: empty file");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw InputError(name, std::string("cannot map: ") + std::strerror(err));
  return GgufFileFactory::adopt(path, map, size);
}

std::shared_ptr<const GgufFile> parse_gguf_buffer(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw InputError(name, "truncated: empty file");
  // An anonymous mapping gives the copy the same lifetime rules as a file mapping.
  void* map =
      mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) throw RunError(name + ": cannot allocate " + std::to_string(bytes.size()));
  std::memcpy(map, bytes.data(), bytes.size());
  mprotect(map, bytes.size(), PROT_READ);
  return GgufFileFactory::adopt(name, map, bytes.size());
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool GgufFile::has(std::string_view key) const {
  return metadata_.find(std::string(key)) != metadata_.end();
}

namespace {

[[noreturn]] void wrong_type(const GgufFile& f, std::string_view key, const char* expected,
                             const GgufValue& v) {
  throw InputError(f.path().string(), "metadata " + std::string(key) + ": expected " + expected +
                                          ", found " + variant_kind(v));
}

const GgufValue* lookup(const std::map<std::string, GgufValue>& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? nullptr : &it->second;
}

const GgufValue& require(const GgufFile& f, std::string_view key) {
  const GgufValue* v = lookup(f.metadata(), key);
  if (v == nullptr)
    throw InputError(f.path().string(), "metadata " + std::string(key) + ": missing");
  return *v;
}

}  // namespace

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  const GgufValue* v = lookup(metadata_, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  wrong_type(*this, key, "string", *v);
}

std::optional<int64_t> GgufFile::find_int(std::string_view key) const {
  const GgufValue* v = lookup(metadata_, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(v)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
    throw InputError(path_.string(), "metadata " + std::string(key) + ": value " +
                                         std::to_string(*u) + " is too large");
  }
  wrong_type(*this, key, "integer", *v);
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
  const GgufValue* v = lookup(metadata_, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* d = std::get_if<double>(v)) return *d;
  if (const auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(v)) return static_cast<double>(*u);
  wrong_type(*this, key, "float", *v);
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const GgufValue* v = lookup(metadata_, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* b = std::get_if<bool>(v)) return *b;
  wrong_type(*this, key, "bool", *v);
}

std::string GgufFile::get_string(std::string_view key) const {
  require(*this, key);
  return *find_string(key);
}
int64_t GgufFile::get_int(std::string_view key) const {
  require(*this, key);
  return *find_int(key);
}
double GgufFile::get_float(std::string_view key) const {
  require(*this, key);
  return *find_float(key);
}
bool GgufFile::get_bool(std::string_view key) const {
  require(*this, key);
  return *find_bool(key);
}
const GgufArray& GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (const auto* a = std::get_if<GgufArray>(&v)) return *a;
  wrong_type(*this, key, "array", v);
}

}  // namespace flowrank::engine

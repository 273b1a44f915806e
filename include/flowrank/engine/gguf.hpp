#pragma once
// GGUF v3 reader over a read-only mmap. Parses and validates the header, metadata and tensor
// table eagerly (every offset and size checked against the file), so later accesses cannot read
// outside the mapping. Errors are InputError("<path>", "<what>, expected X, found Y").
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine {

enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

struct GgufArray {
  GgufValueType type = GgufValueType::kU8;
  // Exactly one is filled, by element type: integers/bools widen to int64 (u64 above INT64_MAX is
  // rejected), floats to double; `arrays` holds an array of arrays (one level of nesting at most).
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufArray> arrays;
  std::size_t size() const;
};

using GgufValue = std::variant<int64_t, uint64_t, double, bool, std::string, GgufArray>;

struct GgufTensorInfo {
  std::string name;
  TensorType type;
  std::vector<int64_t> dims;  // dims[0] contiguous
  uint64_t offset = 0;        // from the start of the data section
  std::size_t nbytes = 0;
  const void* data = nullptr;  // into the mapping
};

class GgufFile {
 public:
  // Throws InputError for a missing, truncated or malformed file.
  static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  bool has(std::string_view key) const;
  // Typed getters: throw InputError("<path>", "metadata <key>: missing" / "expected T, found U").
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;   // any integer type
  double get_float(std::string_view key) const;  // f32/f64 (or integer)
  bool get_bool(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

 private:
  GgufFile() = default;
  std::filesystem::path path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  friend struct GgufParser;
  friend struct GgufFileFactory;
};

// Parses a GGUF image already in memory (for the fuzzer and tests); `name` is used in errors.
std::shared_ptr<const GgufFile> parse_gguf_buffer(std::string_view bytes, const std::string& name);

}  // namespace flowrank::engine

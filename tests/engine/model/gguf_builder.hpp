#pragma once
// Writes GGUF images byte by byte, independently of the reader, so tests can build valid files
// and then break them in precise ways.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace flowrank::engine::testing {

class GgufBuilder {
 public:
  // Raw encoders, public so tests can hand-craft broken values.
  static void put_u32(std::string& o, uint32_t v) { o.append(reinterpret_cast<char*>(&v), 4); }
  static void put_u64(std::string& o, uint64_t v) { o.append(reinterpret_cast<char*>(&v), 8); }
  static void put_str(std::string& o, const std::string& s) {
    put_u64(o, s.size());
    o += s;
  }

  GgufBuilder& u32(const std::string& key, uint32_t v) {
    begin(key, 4);
    put_u32(kv_, v);
    return *this;
  }
  GgufBuilder& i32(const std::string& key, int32_t v) {
    begin(key, 5);
    kv_.append(reinterpret_cast<char*>(&v), 4);
    return *this;
  }
  GgufBuilder& u64(const std::string& key, uint64_t v) {
    begin(key, 10);
    put_u64(kv_, v);
    return *this;
  }
  GgufBuilder& f32(const std::string& key, float v) {
    begin(key, 6);
    kv_.append(reinterpret_cast<char*>(&v), 4);
    return *this;
  }
  GgufBuilder& f64(const std::string& key, double v) {
    begin(key, 12);
    kv_.append(reinterpret_cast<char*>(&v), 8);
    return *this;
  }
  GgufBuilder& boolean(const std::string& key, bool v) {
    begin(key, 7);
    kv_ += static_cast<char>(v ? 1 : 0);
    return *this;
  }
  GgufBuilder& str(const std::string& key, const std::string& v) {
    begin(key, 8);
    put_str(kv_, v);
    return *this;
  }
  GgufBuilder& str_array(const std::string& key, const std::vector<std::string>& v) {
    begin(key, 9);
    put_u32(kv_, 8);
    put_u64(kv_, v.size());
    for (const auto& s : v) put_str(kv_, s);
    return *this;
  }
  GgufBuilder& bool_array(const std::string& key, const std::vector<bool>& v) {
    begin(key, 9);
    put_u32(kv_, 7);
    put_u64(kv_, v.size());
    for (bool b : v) kv_ += static_cast<char>(b ? 1 : 0);
    return *this;
  }
  // A key whose value bytes (type id included) the caller writes raw.
  GgufBuilder& raw(const std::string& key, const std::string& type_and_value) {
    ++n_kv_;
    put_str(kv_, key);
    kv_ += type_and_value;
    return *this;
  }

  // Adds a tensor; `data` must be the tensor's exact byte size (the builder pads to alignment).
  GgufBuilder& tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& dims,
                      const std::string& data) {
    tensors_.push_back({name, type, dims, data});
    return *this;
  }

  std::string build(uint32_t version = 3, uint32_t alignment = 32) const {
    std::string o = "GGUF";
    put_u32(o, version);
    put_u64(o, tensors_.size());
    put_u64(o, n_kv_);
    o += kv_;
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
      put_str(o, t.name);
      put_u32(o, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) put_u64(o, d);
      put_u32(o, t.type);
      put_u64(o, offset);
      offsets.push_back(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    o.resize((o.size() + alignment - 1) / alignment * alignment, '\0');
    for (const auto& t : tensors_) {
      o += t.data;
      o.resize((o.size() + alignment - 1) / alignment * alignment, '\0');
    }
    return o;
  }

 private:
  struct T {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::string data;
  };
  void begin(const std::string& key, uint32_t type) {
    ++n_kv_;
    put_str(kv_, key);
    put_u32(kv_, type);
  }
  std::string kv_;
  uint64_t n_kv_ = 0;
  std::vector<T> tensors_;
};

inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace flowrank::engine::testing

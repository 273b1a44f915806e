#pragma once
// Little-endian, length-prefixed binary encoding for what flowrank moves between processes and
// files (records gathered to rank 0, expanded jobs in the flow cache and broadcast to ranks).
// The reader checks every length against the bytes left, so garbage throws instead of reading
// out of bounds or allocating gigabytes.
#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "flowrank/common/error.hpp"

namespace flowrank {

class ByteWriter {
 public:
  explicit ByteWriter(std::string context) : context_(std::move(context)) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void f32(float v) { u32(std::bit_cast<uint32_t>(v)); }
  void f64(double v) { u64(std::bit_cast<uint64_t>(v)); }
  void count(std::size_t n) {
    if (n > std::numeric_limits<uint32_t>::max())
      throw RunError(context_ + ": more than 2^32-1 items or bytes in one field");
    u32(static_cast<uint32_t>(n));
  }
  void str(std::string_view s) {
    count(s.size());
    out_ += s;
  }
  void raw(const char* p, std::size_t n) { out_.append(p, n); }
  std::string take() { return std::move(out_); }

 private:
  std::string context_;
  std::string out_;
};

class ByteReader {
 public:
  ByteReader(std::string_view in, std::string context) : in_(in), context_(std::move(context)) {}
  [[noreturn]] void fail(const std::string& problem) const {
    throw RunError(context_ + ": " + problem + " at byte " + std::to_string(at_));
  }
  void need(std::size_t n) const {
    if (in_.size() - at_ < n) fail("truncated");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(in_[at_++]);
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[at_ + i])) << (8 * i);
    at_ += 4;
    return v;
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[at_ + i])) << (8 * i);
    at_ += 8;
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  float f32() { return std::bit_cast<float>(u32()); }
  double f64() { return std::bit_cast<double>(u64()); }
  std::string str() { return std::string(take(u32())); }
  // An item count, checked against the bytes left: every item takes at least `min_item_bytes`.
  std::size_t count(std::size_t min_item_bytes) {
    const uint32_t n = u32();
    if (static_cast<uint64_t>(n) * min_item_bytes > in_.size() - at_)
      fail("count " + std::to_string(n) + " exceeds the data");
    return n;
  }
  bool done() const { return at_ == in_.size(); }
  std::size_t position() const { return at_; }
  std::string_view take(std::size_t n) {
    need(n);
    std::string_view v = in_.substr(at_, n);
    at_ += n;
    return v;
  }

 private:
  std::string_view in_;
  std::string context_;
  std::size_t at_ = 0;
};

}  // namespace flowrank

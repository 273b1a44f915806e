#pragma once
// SHA-256 (OpenSSL) for content keys and output hashes.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace flowrank {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::string_view bytes);
std::string to_hex(const Sha256Digest& digest);
std::string sha256_hex(std::string_view bytes);

// CRC-32 (zlib), 8 hex digits: an integrity checksum against accidental corruption of files that
// are re-verified on every run (cache entries), where SHA-256 cost as much as rebuilding them.
// Not a content key: use sha256 for those.
std::string crc32_hex(std::string_view bytes);
uint32_t crc32_of(std::string_view bytes);  // the same checksum as a number

// Incremental hashing for large inputs (fixture trees, cache keys made of many parts).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256& update(std::string_view bytes);
  // Length-prefixed update, so that ("ab","c") and ("a","bc") hash differently.
  Sha256& update_field(std::string_view bytes);
  Sha256Digest finish();
  std::string finish_hex();

 private:
  void* ctx_;
};

}  // namespace flowrank

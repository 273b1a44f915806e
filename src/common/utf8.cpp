#include "flowrank/common/utf8.hpp"

#include <cstdint>

namespace flowrank {
namespace {

// Length of the valid sequence starting at i, 0 if invalid, -1 if valid so far but cut short.
int sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  int len;
  std::uint32_t cp;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    int n = sequence_length(text, i);
    if (n <= 0) return i;
    i += static_cast<std::size_t>(n);
  }
  return std::nullopt;
}

std::size_t complete_utf8_prefix(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    int n = sequence_length(text, i);
    if (n < 0) return i;                            // cut short: hold back
    i += n == 0 ? 1 : static_cast<std::size_t>(n);  // invalid bytes pass through as they are
  }
  return i;
}

namespace {

// Length of the well-formed prefix of a sequence starting at i (Unicode Table 3-7): the full
// sequence length when it is complete, else how many bytes form its maximal subpart (>= 1).
struct Decoded {
  std::size_t length;
  bool valid;
};
Decoded well_formed_prefix(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  if (b0 < 0x80) return {1, true};
  std::size_t need;
  std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false};
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return {k, false};
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    const std::uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) return {k, false};
  }
  return {need, true};
}

}  // namespace

std::string utf8_replace_invalid(std::string_view text) {
  if (!find_invalid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = well_formed_prefix(text, i);
    if (d.valid)
      out.append(text.substr(i, d.length));
    else
      out += "\xEF\xBF\xBD";  // U+FFFD
    i += d.length;
  }
  return out;
}

std::size_t utf8_prefix_bytes(std::string_view text, std::size_t code_points) {
  std::size_t i = 0;
  for (std::size_t n = 0; n < code_points && i < text.size(); ++n) {
    ++i;
    while (i < text.size() && (static_cast<std::uint8_t>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

}  // namespace flowrank

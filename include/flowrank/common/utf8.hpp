#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

namespace flowrank {

// Offset of the first byte that breaks UTF-8 validity (overlongs, surrogates and > U+10FFFF
// count as invalid), or nullopt if `text` is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Length of the longest prefix of `text` that ends on a complete UTF-8 sequence: the part a
// streaming decoder may print now.
std::size_t complete_utf8_prefix(std::string_view text);

}  // namespace flowrank

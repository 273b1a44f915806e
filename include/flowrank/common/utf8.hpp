#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace flowrank {

// Offset of the first byte that breaks UTF-8 validity (overlongs, surrogates and > U+10FFFF
// count as invalid), or nullopt if `text` is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Length of the longest prefix of `text` that ends on a complete UTF-8 sequence: the part a
// streaming decoder may print now.
std::size_t complete_utf8_prefix(std::string_view text);

// `text` with every ill-formed sequence replaced by U+FFFD, one per maximal subpart (Unicode
// 3.9, "U+FFFD substitution of maximal subparts"), as Python's bytes.decode("utf-8",
// errors="replace") does.
std::string utf8_replace_invalid(std::string_view text);

// Bytes taken by the first `code_points` code points of valid UTF-8 `text` (all of it if shorter).
std::size_t utf8_prefix_bytes(std::string_view text, std::size_t code_points);

}  // namespace flowrank

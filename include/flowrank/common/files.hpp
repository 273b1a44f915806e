#pragma once
// File helpers shared by every module: whole-file reads with one-line errors, and atomic writes
// (temp file in the same directory + fsync + rename) so that a crash never leaves half a file.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace flowrank {

// Reads a whole file; throws InputError("path", "cannot read: <reason>").
std::string read_file(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically. Creates parent directories.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// For writers that need a real file (HDF5): `fill` writes to the temp path it is given; on
// success the temp file is renamed over `path`, on exception it is removed and the error rethrown.
void write_file_atomic_with(const std::filesystem::path& path,
                            const std::function<void(const std::filesystem::path& tmp)>& fill);

}  // namespace flowrank

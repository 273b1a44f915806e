#include "flowrank/common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "flowrank/common/error.hpp"

namespace flowrank {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw InputError(path.string(), "is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw InputError(path.string(), "read failed");
  return std::move(buf).str();
}

namespace {

fs::path temp_path_for(const fs::path& path) {
  std::random_device rd;
  return path.parent_path() / ("." + path.filename().string() + ".tmp." +
                               std::to_string(::getpid()) + "." + std::to_string(rd()));
}

void fsync_path(const fs::path& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void ensure_parent(const fs::path& path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      throw RunError(path.parent_path().string() + ": cannot create directory: " + ec.message());
  }
}

void commit(const fs::path& tmp, const fs::path& path) {
  fsync_path(tmp, O_RDONLY);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw RunError(path.string() + ": cannot replace file: " + ec.message());
  }
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), O_RDONLY | O_DIRECTORY);
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  write_file_atomic_with(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RunError(tmp.string() + ": cannot create: " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw RunError(tmp.string() + ": write failed (disk full?)");
  });
}

void write_file_atomic_with(const fs::path& path,
                            const std::function<void(const fs::path&)>& fill) {
  ensure_parent(path);
  const fs::path tmp = temp_path_for(path);
  try {
    fill(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  commit(tmp, path);
}

}  // namespace flowrank

#include "flowrank/common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
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
  // One open, one fstat, one read into a string of the right size: cache entries are read on
  // every run, and stream-buffer copies showed up in the profile of a cache hit.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path.string(), std::string("cannot read: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct ::stat st {};
  if (::fstat(fd, &st) != 0)
    throw InputError(path.string(), std::string("cannot read: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path.string(), "is a directory, expected a file");
  std::string out;
  out.resize(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : 0);
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() + 65536);  // grew, or not a regular file
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputError(path.string(), std::string("read failed: ") + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
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

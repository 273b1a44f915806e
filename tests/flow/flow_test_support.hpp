#pragma once
// Temp directories and small file helpers for the flow tests: every test builds its own inputs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "flowrank/common/error.hpp"
#include "flowrank/flow/fixtures.hpp"

namespace flowrank::flow::testing {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "flowrank-flow-test-XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

inline void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Sets a file's mtime (ns precision) without touching its content.
inline void set_mtime_ns(const fs::path& path, int64_t ns) {
  timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = static_cast<time_t>(ns / 1000000000LL);
  times[1].tv_nsec = static_cast<long>(ns % 1000000000LL);
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0)
    throw std::runtime_error("utimensat failed on " + path.string());
}

inline int64_t mtime_ns(const fs::path& path) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat failed");
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

// The relative paths of a listed fixture tree, in its order.
inline std::vector<std::string> paths_of(const FixtureTree& t) {
  std::vector<std::string> out;
  for (const auto& f : t.files) out.push_back(f.path);
  return out;
}

// Asserts that `fn` throws InputError whose one-line message contains every needle.
inline void expect_input_error(const std::function<void()>& fn,
                               std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message has a newline: " << msg;
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\": " << msg;
  }
}

}  // namespace flowrank::flow::testing

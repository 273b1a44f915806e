#include "flowrank/report/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "flowrank/common/bytes.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"
#include "flowrank/common/hash.hpp"

namespace flowrank::report {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "flowrank-journal 1\n";

std::string frame(std::string payload) {
  ByteWriter w("journal frame");
  w.count(payload.size());
  w.u32(crc32_of(payload));
  w.raw(payload.data(), payload.size());
  return w.take();
}

std::string header_payload(const JournalHeader& h) {
  ByteWriter w("journal header");
  w.u8('H');
  w.str(h.identity);
  w.i32(h.rank);
  w.i32(h.world_size);
  w.count(h.attrs.size());
  for (const auto& [k, v] : h.attrs) {
    w.str(k);
    w.str(v);
  }
  return w.take();
}

JournalHeader parse_header(std::string_view payload) {
  ByteReader r(payload, "journal header");
  if (r.u8() != 'H') r.fail("not a header frame");
  JournalHeader h;
  h.identity = r.str();
  h.rank = r.i32();
  h.world_size = r.i32();
  const size_t n = r.count(8);
  for (size_t i = 0; i < n; ++i) {
    std::string k = r.str();
    h.attrs[std::move(k)] = r.str();
  }
  if (!r.done()) r.fail("trailing bytes");
  return h;
}

// The next frame's payload, or nullopt at the end; throws RunError for a torn or corrupt frame.
std::optional<std::string_view> next_frame(std::string_view bytes, size_t& at) {
  if (at == bytes.size()) return std::nullopt;
  ByteReader r(bytes.substr(at), "frame at byte " + std::to_string(at));
  const uint32_t n = r.u32();
  const uint32_t crc = r.u32();
  const std::string_view payload = r.take(n);
  if (crc32_of(payload) != crc) r.fail("checksum mismatch");
  at += r.position();
  return payload;
}

void write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RunError(path.string() + ": journal write failed: " + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

fs::path journal_path(const fs::path& dir, int32_t rank) {
  return dir / ("rank-" + std::to_string(rank) + ".journal");
}

std::vector<fs::path> journal_files(const fs::path& dir) {
  std::vector<std::pair<long, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= 13 || name.rfind("rank-", 0) != 0 || !name.ends_with(".journal")) continue;
    const std::string digits = name.substr(5, name.size() - 13);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    found.emplace_back(std::stol(digits), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

JournalWriter::JournalWriter(const fs::path& path, const JournalHeader& header) : path_(path) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw RunError(path.string() + ": cannot create journal: " + std::strerror(errno));
  write_all(fd_, std::string(kMagic) + frame(header_payload(header)), path_);
}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalWriter::append(const RecordBatch& records) {
  write_all(fd_, frame("R" + serialize_records(records)), path_);
}

void JournalWriter::sync() {
  ::fdatasync(fd_);
}

JournalContents read_journal(const fs::path& path) {
  const std::string bytes = read_file(path);
  if (bytes.rfind(kMagic, 0) != 0) throw InputError(path.string(), "not a flowrank journal");
  JournalContents out;
  size_t at = kMagic.size();
  try {
    auto header = next_frame(bytes, at);
    if (!header) throw RunError("no header");
    out.header = parse_header(*header);
  } catch (const RunError& e) {
    throw InputError(path.string(), std::string("unreadable journal header: ") + e.what());
  }
  try {
    while (auto payload = next_frame(bytes, at)) {
      if (payload->empty() || payload->front() != 'R')
        throw RunError("frame at byte " + std::to_string(at) + ": unknown kind");
      merge_records(out.records, deserialize_records(payload->substr(1)));
    }
  } catch (const RunError& e) {
    out.warning = path.string() + ": journal ends in a torn or corrupt frame (" + e.what() +
                  "); the " + std::to_string(out.records.steps.size()) +
                  " steps before it are kept";
  }
  return out;
}

}  // namespace flowrank::report

#pragma once
// Nothing lost: each rank appends what it finishes (steps with their output text, workflows,
// phases, and at the end its rank record) to its own journal file, one checksummed frame per
// append, written with write(2) so a frame survives the process being killed right after. A run
// can resume from journals and a report can be rebuilt from them (`flowrank report --recover`).
//
// File: the line "flowrank-journal 1\n", then frames: u32 payload length, u32 CRC-32 of the
// payload, payload (little-endian). The first frame is the header: u8 'H', str identity, i32 rank,
// i32 world size, u32 n, n (str key, str value) attributes. Every later frame is u8 'R' followed
// by record bytes (record_bytes.hpp). A torn or corrupt frame ends the journal: the frames before
// it are kept and the reader says so in a warning.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/report/record_bytes.hpp"

namespace flowrank::report {

struct JournalHeader {
  // What must match for journaled steps to count as done in another run: the run's identity
  // (job file, expanded flows, model), independent of the world size.
  std::string identity;
  int32_t rank = 0;
  int32_t world_size = 1;
  std::map<std::string, std::string> attrs;  // job_name, job_sha256, model, host, report, ...
};

// rank-<R>.journal inside `dir`.
std::filesystem::path journal_path(const std::filesystem::path& dir, int32_t rank);

// Journal files in `dir` (rank-*.journal), by rank.
std::vector<std::filesystem::path> journal_files(const std::filesystem::path& dir);

class JournalWriter {
 public:
  // Creates `path` afresh (parent directories too) and writes the header. Throws RunError.
  JournalWriter(const std::filesystem::path& path, const JournalHeader& header);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  // One frame, one write(2). Throws RunError naming the file when the write fails.
  void append(const RecordBatch& records);
  // fdatasync: the frames so far survive a crash of the machine, not only of the process.
  void sync();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

struct JournalContents {
  JournalHeader header;
  RecordBatch records;                 // every intact frame, merged in order
  std::optional<std::string> warning;  // a torn or corrupt tail, with its byte offset
};

// Throws InputError(path, problem) for a file that is not a journal or whose header is unreadable.
JournalContents read_journal(const std::filesystem::path& path);

}  // namespace flowrank::report

#pragma once
// FlowCache: expanded jobs on disk, keyed by everything that shapes a prompt, each entry
// checksummed so that a corrupt file is rebuilt, never served.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "flowrank/flow/workflow.hpp"

namespace flowrank::flow {

// $FLOWRANK_CACHE_DIR, else $XDG_CACHE_HOME/flowrank, else ~/.cache/flowrank (empty values count
// as unset).
std::filesystem::path default_cache_dir();

class FlowCache {
 public:
  explicit FlowCache(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& dir() const { return dir_; }

  std::filesystem::path entry_path(const std::string& key) const;

  struct Lookup {
    std::optional<ExpandedJob> job;      // set on a verified hit
    std::optional<std::string> warning;  // set when an entry existed but was corrupt
  };
  // Absent entry: neither set. Corrupt or unreadable entry: a one-line warning, no job.
  Lookup load(const std::string& key) const;
  // Atomic write; throws RunError if the directory cannot be written.
  void store(const std::string& key, const ExpandedJob& job) const;

  // Side file recording fixture content hashes by (path, size, mtime_ns) for one fixture
  // directory + include globs + rules + order.
  std::filesystem::path manifest_path(const std::filesystem::path& fixture_root,
                                      const std::vector<std::string>& include, FixtureRules rules,
                                      FixtureOrder order) const;

 private:
  std::filesystem::path dir_;
};

// A cache entry's bytes: header line with the payload's CRC-32 and length, then the payload. Rank 0
// broadcasts these bytes to the other ranks, which decode (and so verify) them on arrival.
std::string encode_cache_entry(const ExpandedJob& job);
// Throws std::runtime_error naming the problem (truncated, checksum mismatch, ...).
ExpandedJob decode_cache_entry(std::string&& bytes);

// Serialisation of an expanded job (the cache payload).
std::string serialize_expanded_job(const ExpandedJob& job);
// Throws std::runtime_error on malformed bytes.
ExpandedJob parse_expanded_job(std::string_view bytes);
// The same, taking over `bytes` for the fixture text (no copy of the largest field).
ExpandedJob parse_expanded_job(std::string&& bytes);

}  // namespace flowrank::flow

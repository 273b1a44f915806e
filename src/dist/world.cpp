#include "flowrank/dist/world.hpp"

#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdlib>
#include <optional>

#include "flowrank/common/error.hpp"

extern char** environ;

namespace flowrank::dist {
namespace {

using Env = std::map<std::string, std::string>;

std::optional<int32_t> read_int(const Env& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  int32_t v = 0;
  const char* b = it->second.data();
  const char* e = b + it->second.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e || v < 0)
    throw InputError("environment " + name,
                     "expected a non-negative integer, found '" + it->second + "'");
  return v;
}

// The first of `names` that is set, with its name.
std::optional<std::pair<int32_t, std::string>> first_int(const Env& env,
                                                         std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = read_int(env, n)) return std::make_pair(*v, std::string(n));
  return std::nullopt;
}

}  // namespace

World detect_world(const Env& env) {
  struct Launcher {
    const char* name;
    std::initializer_list<const char*> size, rank, local_rank;
    const char* requires_var;  // must be set too (nullptr: none)
  };
  static const Launcher kLaunchers[] = {
      {"openmpi",
       {"OMPI_COMM_WORLD_SIZE"},
       {"OMPI_COMM_WORLD_RANK"},
       {"OMPI_COMM_WORLD_LOCAL_RANK"},
       nullptr},
      {"pmix",
       {"OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMIX_SIZE"},
       {"PMIX_RANK"},
       {"PMIX_LOCAL_RANK", "SLURM_LOCALID"},
       "PMIX_RANK"},
      {"pmi", {"PMI_SIZE"}, {"PMI_RANK"}, {"MPI_LOCALRANKID"}, nullptr},
      {"slurm", {"SLURM_NTASKS"}, {"SLURM_PROCID"}, {"SLURM_LOCALID"}, "SLURM_STEP_ID"},
  };
  for (const Launcher& l : kLaunchers) {
    if (l.requires_var && !env.count(l.requires_var)) continue;
    auto size = first_int(env, l.size);
    if (!size) continue;
    World w;
    w.launcher = l.name;
    w.size = size->first;
    auto rank = first_int(env, l.rank);
    w.rank = rank ? rank->first : 0;
    auto local = first_int(env, l.local_rank);
    w.local_rank = local ? local->first : 0;
    if (w.size < 1) throw InputError("environment " + size->second, "world size must be >= 1");
    if (w.rank >= w.size)
      throw InputError(
          "environment " + (rank ? rank->second : std::string(*l.rank.begin())),
          "rank " + std::to_string(w.rank) + " is not below world size " + std::to_string(w.size));
    return w;
  }
  return World{};
}

World detect_world() {
  Env env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return detect_world(env);
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

}  // namespace flowrank::dist

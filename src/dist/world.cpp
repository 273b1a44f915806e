#include "flowrank/dist/world.hpp"

#include <charconv>
#include <cstdlib>
#include <optional>

#include "flowrank/common/error.hpp"

extern char** environ;

namespace flowrank::dist {
namespace {

std::optional<int32_t> read_int(const std::map<std::string, std::string>& env,
                                const std::string& name) {
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

}  // namespace

World detect_world(const std::map<std::string, std::string>& env) {
  struct Launcher {
    const char* name;
    const char* size;
    const char* rank;
    const char* local_rank;
  };
  static constexpr Launcher kLaunchers[] = {
      {"openmpi", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"pmix", "PMIX_SIZE", "PMIX_RANK", "PMIX_LOCAL_RANK"},
      {"pmi", "PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"},
      {"slurm", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID"},
  };
  for (const Launcher& l : kLaunchers) {
    auto size = read_int(env, l.size);
    if (!size) continue;
    World w;
    w.launcher = l.name;
    w.size = *size;
    w.rank = read_int(env, l.rank).value_or(0);
    w.local_rank = read_int(env, l.local_rank).value_or(0);
    if (w.size < 1)
      throw InputError(std::string("environment ") + l.size, "world size must be >= 1");
    if (w.rank >= w.size)
      throw InputError(
          std::string("environment ") + l.rank,
          "rank " + std::to_string(w.rank) + " is not below world size " + std::to_string(w.size));
    return w;
  }
  return World{};
}

World detect_world() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return detect_world(env);
}

}  // namespace flowrank::dist

#include "dalle/dist/launch.h"

#include <cstdlib>
#include <string_view>

#include "dalle/util/error.h"

namespace dalle {

namespace {

int parse_int(const char* name, const char* value, int min) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < min || v > (1L << 30))
    throw Error(std::string("distributed launch: ") + name + "='" + value + "' is not a valid number");
  return static_cast<int>(v);
}

}  // namespace

std::string DistLaunch::store_prefix() const {
  return agent_store ? "/worker/attempt_" + std::to_string(restart_count) : "";
}

std::string slurm_first_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets; a bracket holds ranges of suffixes.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  const size_t close = first.find(']', open);
  if (close == std::string::npos) throw Error("SLURM_JOB_NODELIST='" + nodelist + "': unbalanced '['");
  std::string range = first.substr(open + 1, close - open - 1);
  range = range.substr(0, range.find(','));  // first range of the list
  range = range.substr(0, range.find('-'));  // its first number, zero padding kept
  return first.substr(0, open) + range + first.substr(close + 1);
}

std::optional<DistLaunch> dist_launch_from_env(const std::function<const char*(const char*)>& getenv_fn) {
  auto env = [&](const char* name) -> const char* {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v && *v ? v : nullptr;
  };
  DistLaunch l;
  if (env("WORLD_SIZE")) {
    l.world_size = parse_int("WORLD_SIZE", env("WORLD_SIZE"), 1);
    if (l.world_size <= 1) return std::nullopt;
    if (!env("RANK")) throw Error("distributed launch: WORLD_SIZE is set but RANK is not");
    l.rank = parse_int("RANK", env("RANK"), 0);
    l.local_rank = env("LOCAL_RANK") ? parse_int("LOCAL_RANK", env("LOCAL_RANK"), 0) : 0;
    const char* agent = env("TORCHELASTIC_USE_AGENT_STORE");
    l.agent_store = agent && (std::string_view(agent) == "True" || std::string_view(agent) == "true" ||
                              std::string_view(agent) == "1");
    l.restart_count = env("TORCHELASTIC_RESTART_COUNT")
                          ? parse_int("TORCHELASTIC_RESTART_COUNT", env("TORCHELASTIC_RESTART_COUNT"), 0)
                          : 0;
    l.launcher = env("TORCHELASTIC_RUN_ID") || agent ? "torchrun" : "env";
  } else if (env("SLURM_NTASKS") && env("SLURM_PROCID")) {
    l.world_size = parse_int("SLURM_NTASKS", env("SLURM_NTASKS"), 1);
    if (l.world_size <= 1) return std::nullopt;
    l.rank = parse_int("SLURM_PROCID", env("SLURM_PROCID"), 0);
    l.local_rank = env("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", env("SLURM_LOCALID"), 0) : 0;
    l.launcher = "slurm";
  } else {
    return std::nullopt;
  }
  if (l.rank >= l.world_size)
    throw Error("distributed launch: rank " + std::to_string(l.rank) + " is outside a world of " +
                std::to_string(l.world_size));
  if (env("MASTER_ADDR")) {
    l.master_addr = env("MASTER_ADDR");
  } else if (l.launcher == "slurm" && env("SLURM_JOB_NODELIST")) {
    l.master_addr = slurm_first_host(env("SLURM_JOB_NODELIST"));
  } else {
    throw Error("distributed launch: MASTER_ADDR is not set (the host of rank 0, e.g. MASTER_ADDR=127.0.0.1)");
  }
  if (env("MASTER_PORT")) l.master_port = parse_int("MASTER_PORT", env("MASTER_PORT"), 1);
  if (l.master_port > 65535) throw Error("distributed launch: MASTER_PORT " + std::to_string(l.master_port) + " is not a port");
  return l;
}

}  // namespace dalle

// Where a process stands in a distributed run, read from the launcher's environment:
//   - torchrun: RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and with its default
//     static rendezvous TORCHELASTIC_USE_AGENT_STORE=True (the agent hosts the TCPStore, every
//     rank connects as a client under the prefix /worker/attempt_<TORCHELASTIC_RESTART_COUNT>);
//   - Slurm (srun): SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, and the first host of
//     SLURM_JOB_NODELIST as the master unless MASTER_ADDR is set;
//   - by hand: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (rank 0 hosts the store).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace dalle {

struct DistLaunch {
  std::string launcher;  // "torchrun", "slurm" or "env"
  int rank = 0, local_rank = 0, world_size = 1;
  std::string master_addr;
  int master_port = 29500;
  bool agent_store = false;  // torchrun's agent hosts the store
  int restart_count = 0;     // torchrun's TORCHELASTIC_RESTART_COUNT
  std::string store_prefix() const;  // "/worker/attempt_N" under torchrun's agent store, else ""
};

// nullopt when the environment names no distributed run (or a world of one). Throws Error on
// values that cannot be right (a rank outside the world, a port that is not a number, Slurm
// without a node list and no MASTER_ADDR). `getenv` is injectable for tests.
std::optional<DistLaunch> dist_launch_from_env(
    const std::function<const char*(const char*)>& getenv_fn = nullptr);

// The first host of a Slurm node list: "gpu[003-005,009],cpu01" -> "gpu003".
std::string slurm_first_host(const std::string& nodelist);

}  // namespace dalle

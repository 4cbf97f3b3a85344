// ParallelLayout: world = TP x DP with TP varying fastest (Megatron's order:
// rank = tp_rank + TP * dp_rank), and the TP and DP groups as communicators split from the world.
#pragma once
#include <memory>

#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"

namespace braid {

struct ParallelLayout {
  int world_size = 1;
  int rank = 0;
  int tp_size = 1;
  int dp_size = 1;
  int tp_rank = 0;
  int dp_rank = 0;
  std::shared_ptr<Communicator> world;
  std::shared_ptr<Communicator> tp;  // ranks that hold shards of the same replica
  std::shared_ptr<Communicator> dp;  // ranks that hold the same shard of different replicas

  // Collective over `world`. Fails with a clear message when tp_size does not divide the world.
  static absl::StatusOr<ParallelLayout> Create(std::shared_ptr<Communicator> world, int tp_size);

  static int RankOf(int tp_rank, int dp_rank, int tp_size) { return tp_rank + tp_size * dp_rank; }
  static int TpRankOf(int rank, int tp_size) { return rank % tp_size; }
  static int DpRankOf(int rank, int tp_size) { return rank / tp_size; }
};

}  // namespace braid

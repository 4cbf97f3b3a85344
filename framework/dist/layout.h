// ParallelLayout: world = TP x DP x PP in Megatron's rank order: TP varies fastest, then DP, then
// PP (rank = tp_rank + TP * (dp_rank + DP * pp_rank)); with PP = 1 this is the TP x DP order
// rank = tp_rank + TP * dp_rank. The groups are communicators split from the world:
//   tp         ranks holding shards of the same layers of the same replica (one node);
//   dp         ranks holding the same shard of different replicas;
//   pp         the stages of one (tp_rank, dp_rank): pp rank p holds stage p (docs/pipeline.md);
//   embedding  the first and the last stage of a pp group (tied input/output embeddings: their
//              two copies' gradients are summed over it); a world of one on the other stages.
// Expert parallelism (EP, dividing DP; docs/moe.md) splits each dp group into DP/EP blocks of EP
// consecutive dp ranks (Megatron's order: ep_rank = dp_rank % EP):
//   ep         the EP ranks of one block, which hold different experts and exchange tokens;
//   expert_dp  the ranks with the same ep_rank in every block, which hold the same experts (their
//              gradients are averaged over it, as the dense ones over dp).
// Without EP (EP 1) ep is a world of one and expert_dp is dp.
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
  int pp_size = 1;
  int tp_rank = 0;
  int dp_rank = 0;
  int pp_rank = 0;
  int ep_size = 1;
  int ep_rank = 0;
  std::shared_ptr<Communicator> world;
  std::shared_ptr<Communicator> tp;         // ranks that hold shards of the same replica's stage
  std::shared_ptr<Communicator> dp;         // ranks that hold the same shard of different replicas
  std::shared_ptr<Communicator> pp;         // the stages of this (tp_rank, dp_rank)
  std::shared_ptr<Communicator> embedding;  // first + last stage; alone on the others
  std::shared_ptr<Communicator> ep;         // EP ranks of this dp block (different experts)
  std::shared_ptr<Communicator> expert_dp;  // the same experts in the other blocks

  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }

  // Collective over `world`. Fails with a clear message when TP x PP does not divide the world,
  // or EP does not divide DP.
  static absl::StatusOr<ParallelLayout> Create(std::shared_ptr<Communicator> world, int tp_size,
                                               int pp_size = 1, int ep_size = 1);

  static int RankOf(int tp_rank, int dp_rank, int tp_size, int pp_rank = 0, int dp_size = 1) {
    return tp_rank + tp_size * (dp_rank + dp_size * pp_rank);
  }
  static int TpRankOf(int rank, int tp_size) { return rank % tp_size; }
  static int DpRankOf(int rank, int tp_size, int dp_size = 0) {
    return dp_size > 0 ? (rank / tp_size) % dp_size : rank / tp_size;
  }
  static int PpRankOf(int rank, int tp_size, int dp_size) { return rank / (tp_size * dp_size); }
};

}  // namespace braid

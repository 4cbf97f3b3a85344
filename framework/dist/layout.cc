// TP x DP x PP layout and its group communicators (see layout.h).
#include "framework/dist/layout.h"

#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace braid {

absl::StatusOr<ParallelLayout> ParallelLayout::Create(std::shared_ptr<Communicator> world,
                                                      int tp_size, int pp_size, int ep_size) {
  ParallelLayout l;
  l.world_size = world->size();
  l.rank = world->rank();
  if (tp_size < 1 || pp_size < 1 || l.world_size % (tp_size * pp_size) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor-parallel size %d x pipeline-parallel size %d does not divide the world size %d. "
        "HINT: launch a multiple of %d ranks (world = TP x DP x PP).",
        tp_size, pp_size, l.world_size, std::max(1, tp_size * pp_size)));
  }
  l.tp_size = tp_size;
  l.pp_size = pp_size;
  l.dp_size = l.world_size / (tp_size * pp_size);
  l.tp_rank = TpRankOf(l.rank, tp_size);
  l.dp_rank = DpRankOf(l.rank, tp_size, l.dp_size);
  l.pp_rank = PpRankOf(l.rank, tp_size, l.dp_size);
  l.world = world;
  const int replica = l.tp_rank + tp_size * l.dp_rank;  // which pp group
  BRAID_ASSIGN_OR_RETURN(
      l.tp, world->Split(/*color=*/l.dp_rank + l.dp_size * l.pp_rank, /*key=*/l.tp_rank, "tp"));
  BRAID_ASSIGN_OR_RETURN(
      l.dp, world->Split(/*color=*/l.tp_rank + tp_size * l.pp_rank, /*key=*/l.dp_rank, "dp"));
  BRAID_ASSIGN_OR_RETURN(l.pp, world->Split(/*color=*/replica, /*key=*/l.pp_rank, "pp"));
  if (ep_size < 1 || l.dp_size % ep_size != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "expert-parallel size %d does not divide the data-parallel size %d. HINT: the EP ranks "
        "are taken from DP; launch a multiple of %d ranks.",
        ep_size, l.dp_size, std::max(1, tp_size * pp_size * ep_size)));
  }
  l.ep_size = ep_size;
  l.ep_rank = l.dp_rank % ep_size;
  const int block = l.dp_rank / ep_size;  // which EP group of this dp group
  BRAID_ASSIGN_OR_RETURN(
      l.ep, world->Split(/*color=*/l.tp_rank + tp_size * (block + l.dp_size * l.pp_rank),
                         /*key=*/l.ep_rank, "ep"));
  BRAID_ASSIGN_OR_RETURN(
      l.expert_dp, world->Split(/*color=*/l.tp_rank + tp_size * (l.ep_rank + ep_size * l.pp_rank),
                                /*key=*/block, "expert_dp"));
  const bool ends = l.first_stage() || l.last_stage();
  BRAID_ASSIGN_OR_RETURN(l.embedding, world->Split(/*color=*/ends ? replica : l.world_size + l.rank,
                                                   /*key=*/l.pp_rank, "embedding"));
  return l;
}

}  // namespace braid

// TP x DP layout and its group communicators (see layout.h).
#include "framework/dist/layout.h"

#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace braid {

absl::StatusOr<ParallelLayout> ParallelLayout::Create(std::shared_ptr<Communicator> world,
                                                      int tp_size) {
  ParallelLayout l;
  l.world_size = world->size();
  l.rank = world->rank();
  if (tp_size < 1 || l.world_size % tp_size != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor-parallel size %d does not divide the world size %d. HINT: launch a multiple of "
        "%d ranks (world = TP x DP).",
        tp_size, l.world_size, tp_size));
  }
  l.tp_size = tp_size;
  l.dp_size = l.world_size / tp_size;
  l.tp_rank = TpRankOf(l.rank, tp_size);
  l.dp_rank = DpRankOf(l.rank, tp_size);
  l.world = world;
  BRAID_ASSIGN_OR_RETURN(l.tp, world->Split(/*color=*/l.dp_rank, /*key=*/l.tp_rank, "tp"));
  BRAID_ASSIGN_OR_RETURN(l.dp, world->Split(/*color=*/l.tp_rank, /*key=*/l.dp_rank, "dp"));
  return l;
}

}  // namespace braid

// Closed-form checks of every collective: each rank fills tensors from its rank, runs the
// collective (sync, or several async ones waited in reverse order), and compares with the value
// the formula gives. Used by `pretrain --self-check` and by the multi-rank tests.
#pragma once
#include <c10/core/ScalarType.h>

#include <vector>

#include "absl/status/status.h"
#include "framework/dist/communicator.h"

namespace braid::selfcheck {

std::vector<c10::ScalarType> SupportedDtypes();
// float32, float64, bfloat16, float16: the dtypes kAvg applies to.
bool IsFloating(c10::ScalarType t);

// Element i on rank r is r + 1 + i % 4: sum = s(s+1)/2 + s*(i%4), max = s + i%4, avg = sum/s.
absl::Status AllReduce(Communicator& c, c10::ScalarType dtype, ReduceOp op, bool async);
// Rank r contributes r * 8 + i % 7; the output is every rank's block in rank order.
absl::Status AllGather(Communicator& c, c10::ScalarType dtype, bool async);
// Element j of rank r's input is r + 1 + j % 5; rank b receives block b reduced.
absl::Status ReduceScatter(Communicator& c, c10::ScalarType dtype, ReduceOp op, bool async);
// Root holds 7 + root + i % 3, the others -1; every rank ends with the root's values.
absl::Status Broadcast(Communicator& c, c10::ScalarType dtype, int root, bool async);
absl::Status Barrier(Communicator& c, bool async);

// Every check above on every dtype, op, root and mode; counts the checks; the first failure.
absl::Status RunAll(Communicator& c, int* checks_run);

}  // namespace braid::selfcheck

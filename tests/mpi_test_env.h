// The Runtime of a multi-rank test process (set up by mpi_test_main.cc).
#pragma once
#include "framework/dist/runtime.h"

namespace braid::testing {
extern Runtime* g_runtime;
}  // namespace braid::testing

// gtest main for multi-rank tests: one Runtime for the process, the full report from rank 0,
// failures from every rank tagged with the rank; the exit code is non-zero on the rank that
// failed, so mpirun's is too.
#include <gtest/gtest.h>

#include <cstdio>

#include "framework/dist/runtime.h"
#include "tests/mpi_test_env.h"

namespace braid::testing {
Runtime* g_runtime = nullptr;

namespace {
// Prints only failed assertions, tagged with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name(), r.line_number(),
                 r.summary());
  }

 private:
  int rank_;
};
}  // namespace
}  // namespace braid::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto rt = braid::Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rt.status().message()).c_str());
    return 2;
  }
  braid::testing::g_runtime = rt->get();
  if ((*rt)->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new braid::testing::FailurePrinter((*rt)->rank()));
  }
  int result = RUN_ALL_TESTS();
  braid::testing::g_runtime = nullptr;
  rt->reset();
  return result;
}

// Multi-rank tests of the communicator and the TP x DP layout, run by ctest under mpirun with 1,
// 2 and 4 ranks. Every collective, sync and async, on every supported dtype, against the closed
// form (selfcheck.h gives the formulas); sub-group collectives on each TP x DP layout the world
// allows; the rank -> (tp, dp) mapping; argument errors; all-to-all with variable counts against
// the rows each rank addressed to each.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "framework/dist/layout.h"
#include "framework/dist/selfcheck.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::g_runtime;

struct Case {
  c10::ScalarType dtype;
  bool async;
};
std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (auto dtype : selfcheck::SupportedDtypes())
    for (bool async : {false, true}) cases.push_back({dtype, async});
  return cases;
}
std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return std::string(c10::toString(info.param.dtype)) + (info.param.async ? "_async" : "_sync");
}

class Collectives : public ::testing::TestWithParam<Case> {
 protected:
  Communicator& world() { return *g_runtime->world(); }
};

TEST_P(Collectives, AllReduceSumAvgMax) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    if (op == ReduceOp::kAvg && !selfcheck::IsFloating(GetParam().dtype)) continue;
    absl::Status s = selfcheck::AllReduce(world(), GetParam().dtype, op, GetParam().async);
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST_P(Collectives, AllGather) {
  absl::Status s = selfcheck::AllGather(world(), GetParam().dtype, GetParam().async);
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(Collectives, ReduceScatterSumAvgMax) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    if (op == ReduceOp::kAvg && !selfcheck::IsFloating(GetParam().dtype)) continue;
    absl::Status s = selfcheck::ReduceScatter(world(), GetParam().dtype, op, GetParam().async);
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST_P(Collectives, BroadcastFromEveryRoot) {
  for (int root = 0; root < world().size(); ++root) {
    absl::Status s = selfcheck::Broadcast(world(), GetParam().dtype, root, GetParam().async);
    EXPECT_TRUE(s.ok()) << "root " << root << ": " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, Collectives, ::testing::ValuesIn(AllCases()), CaseName);

TEST(Communicator, BarrierSyncAndAsync) {
  EXPECT_TRUE(selfcheck::Barrier(*g_runtime->world(), false).ok());
  EXPECT_TRUE(selfcheck::Barrier(*g_runtime->world(), true).ok());
}

// The 16-bit types are reduced as numbers: 1.5 summed over the ranks is 1.5 x size in bf16 and
// fp16, which a byte-wise integer sum would not give.
TEST(Communicator, HalfTypesReduceAsNumbers) {
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    at::Tensor t = torch::full({3}, 1.5, torch::TensorOptions().dtype(dtype));
    ASSERT_TRUE(g_runtime->world()->AllReduce(t, ReduceOp::kSum).ok());
    EXPECT_EQ(t[0].item<float>(), 1.5f * g_runtime->world_size()) << c10::toString(dtype);
  }
}

// Async collectives on two communicators at once make progress independently.
TEST(Communicator, AsyncAcrossGroupsOverlap) {
  auto layout = ParallelLayout::Create(g_runtime->world(), 1);
  ASSERT_TRUE(layout.ok()) << layout.status();
  at::Tensor a = torch::ones({1 << 16}), b = torch::ones({1 << 16});
  auto wa = layout->dp->AllReduceAsync(a, ReduceOp::kSum);
  auto wb = layout->world->AllReduceAsync(b, ReduceOp::kSum);
  ASSERT_TRUE(wa.ok() && wb.ok());
  ASSERT_TRUE((*wb)->Wait().ok());
  ASSERT_TRUE((*wa)->Wait().ok());
  EXPECT_EQ(a[0].item<float>(), g_runtime->world_size());
  EXPECT_EQ(b[(1 << 16) - 1].item<float>(), g_runtime->world_size());
}

// The in-place forms (NCCL's convention, what the distributed optimizer's buckets use): the
// reduce-scatter's output is this rank's block of its input, the all-gather's input this rank's
// block of its output; the results equal the out-of-place ones. Another overlap is refused.
TEST(Communicator, InPlaceReduceScatterAndAllGather) {
  Communicator& c = *g_runtime->world();
  const int64_t n = 1000, r = c.rank();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
    at::Tensor in = (torch::arange(n * c.size(), torch::kFloat).remainder(13) + r) * 0.5;
    at::Tensor want = torch::empty({n});
    ASSERT_TRUE(c.ReduceScatter(in, want, op).ok());
    at::Tensor inplace = in.clone();
    absl::Status s = c.ReduceScatter(inplace, inplace.narrow(0, r * n, n), op);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(torch::equal(inplace.narrow(0, r * n, n), want));
  }
  at::Tensor mine = torch::arange(n, torch::kFloat) + 1000 * r;
  at::Tensor want = torch::empty({n * c.size()});
  ASSERT_TRUE(c.AllGather(mine, want).ok());
  at::Tensor out = torch::zeros({n * c.size()});
  out.narrow(0, r * n, n).copy_(mine);
  absl::Status s = c.AllGather(out.narrow(0, r * n, n), out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(torch::equal(out, want));
  if (c.size() > 1) {
    at::Tensor big = torch::zeros({n * c.size()});
    s = c.ReduceScatter(big, big.narrow(0, ((r + 1) % c.size()) * n, n), ReduceOp::kSum);
    EXPECT_NE(s.message().find("not this rank's block"), std::string::npos) << s;
  }
}

// Point-to-point (what pipeline stages exchange): every rank sends two tensors to its right
// neighbour and receives them from its left in the other order; each lands by its tag. A send and a
// receive in one call both ways round the ring complete (no deadlock). A message of another size
// than the receive expects, and a peer that is not another rank, are refused by name.
TEST(Communicator, SendRecvMatchesByTagBothWays) {
  Communicator& c = *g_runtime->world();
  const int n = c.size(), r = c.rank();
  if (n == 1) GTEST_SKIP() << "needs 2 ranks";
  const int right = (r + 1) % n, left = (r - 1 + n) % n;
  at::Tensor a = torch::full({1 << 16}, 10.0 * r + 1), b = torch::full({3}, 10.0 * r + 2);
  auto sa = c.SendRecvAsync({a}, {right}, {}, {}, 5);
  auto sb = c.SendRecvAsync({b}, {right}, {}, {}, 6);
  ASSERT_TRUE(sa.ok() && sb.ok());
  at::Tensor got_b = torch::empty({3}), got_a = torch::empty({1 << 16});
  ASSERT_TRUE(c.SendRecv({}, {}, {got_b}, {left}, 6).ok());
  ASSERT_TRUE(c.SendRecv({}, {}, {got_a}, {left}, 5).ok());
  ASSERT_TRUE((*sa)->Wait().ok() && (*sb)->Wait().ok());
  EXPECT_TRUE(torch::equal(got_a, torch::full({1 << 16}, 10.0 * left + 1)));
  EXPECT_TRUE(torch::equal(got_b, torch::full({3}, 10.0 * left + 2)));

  at::Tensor out = torch::full({7}, static_cast<double>(r), torch::kDouble);
  at::Tensor in = torch::empty({7}, torch::kDouble);
  absl::Status s = c.SendRecv({out}, {right}, {in}, {left}, 9);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(in[6].item<double>(), left);

  s = c.SendRecv({out}, {r}, {}, {}, 1);
  EXPECT_NE(s.message().find("is not another rank of this communicator"), std::string::npos) << s;
  auto short_send = c.SendRecvAsync({torch::zeros({4})}, {right}, {}, {}, 11);
  ASSERT_TRUE(short_send.ok());
  s = c.SendRecv({}, {}, {torch::empty({5})}, {left}, 11);
  EXPECT_NE(
      s.message().find("received 4 elements from rank " + std::to_string(left) + ", expected 5"),
      std::string::npos)
      << s;
  ASSERT_TRUE((*short_send)->Wait().ok());
}

// Rank r sends rank q (r + 2q) % 3 rows (some blocks empty), each row [r, q, i, ...]: every rank
// receives exactly the rows addressed to it, in rank order; on every dtype; sync and async; the
// counts exchanged first with AllToAllCounts.
TEST(Communicator, AllToAllWithVariableCounts) {
  Communicator& c = *g_runtime->world();
  const int n = c.size(), r = c.rank();
  for (auto dtype : selfcheck::SupportedDtypes()) {
    for (bool async : {false, true}) {
      std::vector<int64_t> send(n);
      for (int q = 0; q < n; ++q) send[q] = (r + 2 * q) % 3;
      auto counts = AllToAllCounts(c, send);
      ASSERT_TRUE(counts.ok()) << counts.status();
      std::vector<at::Tensor> rows;
      for (int q = 0; q < n; ++q) {
        for (int64_t i = 0; i < send[q]; ++i) {
          rows.push_back(torch::tensor(
              {static_cast<double>(r), static_cast<double>(q), static_cast<double>(i), 7.0}));
        }
      }
      int64_t total = 0;
      for (int q = 0; q < n; ++q) {
        EXPECT_EQ((*counts)[q], (q + 2 * r) % 3) << "from rank " << q;
        total += (*counts)[q];
      }
      const at::Tensor in = rows.empty() ? torch::empty({0, 4}) : torch::stack(rows);
      const at::Tensor input = in.to(dtype).reshape({-1, 2, 2}).contiguous();
      const at::Tensor output = torch::full({total, 2, 2}, -1.0).to(dtype);
      if (async) {
        auto work = c.AllToAllAsync(input, send, output, *counts);
        ASSERT_TRUE(work.ok()) << work.status();
        ASSERT_TRUE((*work)->Wait().ok());
      } else {
        absl::Status st = c.AllToAll(input, send, output, *counts);
        ASSERT_TRUE(st.ok()) << st;
      }
      const at::Tensor got = output.to(torch::kDouble).reshape({-1, 4});
      int64_t at = 0;
      for (int q = 0; q < n; ++q) {
        for (int64_t i = 0; i < (*counts)[q]; ++i, ++at) {
          const at::Tensor want = torch::tensor(
              {static_cast<double>(q), static_cast<double>(r), static_cast<double>(i), 7.0});
          EXPECT_TRUE(torch::equal(got[at], want))
              << c10::toString(dtype) << ": row " << at << " " << got[at] << " from rank " << q;
        }
      }
    }
  }
  // Refused: counts that do not sum to the rows; a row shape that differs; overlapping tensors.
  std::vector<int64_t> ones(n, 1);
  absl::Status s = c.AllToAll(torch::zeros({n + 1, 3}), ones, torch::zeros({n, 3}), ones);
  EXPECT_NE(s.message().find("send counts summing to " + std::to_string(n)), std::string::npos)
      << s;
  s = c.AllToAll(torch::zeros({n, 3}), ones, torch::zeros({n, 2}), ones);
  EXPECT_NE(s.message().find("differ in dtype, device or row shape"), std::string::npos) << s;
  const at::Tensor both = torch::zeros({2 * n, 3});
  s = c.AllToAll(both.narrow(0, 0, n), ones, both.narrow(0, n / 2, n), ones);
  EXPECT_NE(s.message().find("overlap"), std::string::npos) << s;
}

TEST(Communicator, RejectsBadArgumentsWithClearErrors) {
  Communicator& c = *g_runtime->world();
  at::Tensor bytes = torch::zeros({4}, torch::kUInt8);
  absl::Status s = c.AllReduce(bytes, ReduceOp::kSum);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("dtype Byte is not supported"), std::string::npos) << s;

  at::Tensor strided = torch::zeros({4, 4}).t();
  s = c.AllReduce(strided, ReduceOp::kSum);
  EXPECT_NE(s.message().find("not contiguous"), std::string::npos) << s;

  s = c.AllReduce(torch::zeros({4}, torch::kInt), ReduceOp::kAvg);
  EXPECT_NE(s.message().find("avg needs a floating-point dtype"), std::string::npos) << s;

  s = c.AllGather(torch::zeros({4}), torch::zeros({4 * c.size() + 1}));
  EXPECT_NE(s.message().find("expected size x block"), std::string::npos) << s;

  s = c.AllGather(torch::zeros({4}), torch::zeros({4 * c.size()}, torch::kDouble));
  EXPECT_NE(s.message().find("input and output differ"), std::string::npos) << s;

  s = c.Broadcast(torch::zeros({4}), c.size());
  EXPECT_NE(s.message().find("is not a rank of it"), std::string::npos) << s;

  // The message names the collective and the group.
  EXPECT_NE(s.message().find("communicator 'world'"), std::string::npos) << s;
}

// Megatron's order: rank = tp + TP * dp. Checked against the world ranks each group gathers.
TEST(Layout, RankMappingAndGroups) {
  const int world = g_runtime->world_size();
  for (int tp = 1; tp <= world; ++tp) {
    if (world % tp != 0) continue;
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    ASSERT_TRUE(layout.ok()) << layout.status();
    const int rank = g_runtime->rank();
    EXPECT_EQ(layout->tp_rank, rank % tp);
    EXPECT_EQ(layout->dp_rank, rank / tp);
    EXPECT_EQ(ParallelLayout::RankOf(layout->tp_rank, layout->dp_rank, tp), rank);
    ASSERT_EQ(layout->tp->size(), tp);
    ASSERT_EQ(layout->dp->size(), world / tp);
    EXPECT_EQ(layout->tp->rank(), layout->tp_rank);
    EXPECT_EQ(layout->dp->rank(), layout->dp_rank);

    at::Tensor me = torch::full({1}, rank, torch::kLong);
    at::Tensor tp_members = torch::empty({tp}, torch::kLong);
    ASSERT_TRUE(layout->tp->AllGather(me, tp_members).ok());
    for (int i = 0; i < tp; ++i)
      EXPECT_EQ(tp_members[i].item<int64_t>(), i + tp * layout->dp_rank) << "tp=" << tp;
    at::Tensor dp_members = torch::empty({world / tp}, torch::kLong);
    ASSERT_TRUE(layout->dp->AllGather(me, dp_members).ok());
    for (int j = 0; j < world / tp; ++j)
      EXPECT_EQ(dp_members[j].item<int64_t>(), layout->tp_rank + tp * j) << "tp=" << tp;
  }
}

// Every collective, sync and async, on the TP and DP sub-groups of every layout (TP=2 x DP=2 on
// four ranks).
TEST(Layout, SubGroupCollectives) {
  const int world = g_runtime->world_size();
  for (int tp = 1; tp <= world; ++tp) {
    if (world % tp != 0) continue;
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    ASSERT_TRUE(layout.ok()) << layout.status();
    for (auto group : {layout->tp, layout->dp}) {
      int n = 0;
      absl::Status s = selfcheck::RunAll(*group, &n);
      EXPECT_TRUE(s.ok()) << "tp=" << tp << " group " << group->name() << ": " << s;
      EXPECT_GT(n, 40);
    }
  }
}

TEST(Layout, RejectsTpThatDoesNotDivideWorld) {
  auto layout = ParallelLayout::Create(g_runtime->world(), g_runtime->world_size() + 1);
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.status().message().find("does not divide the world size"), std::string::npos);
}

}  // namespace
}  // namespace braid

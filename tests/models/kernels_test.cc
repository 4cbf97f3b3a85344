// The compute kernels of framework/kernels/kernels.h against LibTorch's own ops: values and
// gradients, with the operand layouts the attention uses (4-D, a transposed right operand), in fp32
// and through the fallback (fp64).
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "framework/kernels/cpu_allocator.h"
#include "framework/kernels/kernels.h"
#include "tests/lib/tensor_compare.h"

namespace braid {
namespace {

using testing::RelDiff;

void CheckAgainstMatmul(torch::Dtype dtype, bool transpose_b, int threads) {
  torch::set_num_threads(threads);
  torch::manual_seed(5);
  auto o = torch::TensorOptions().dtype(dtype);
  torch::Tensor a = torch::randn({3, 4, 37, 16}, o).requires_grad_(true);
  torch::Tensor b_base =
      torch::randn({3, 4, transpose_b ? 29 : 16, transpose_b ? 16 : 29}, o).requires_grad_(true);
  torch::Tensor b = transpose_b ? b_base.transpose(-2, -1) : b_base;
  torch::Tensor up = torch::randn({3, 4, 37, 29}, o);

  torch::Tensor ours = BatchedMatmul(a, b);
  (ours * up).sum().backward();
  torch::Tensor ga = a.grad().clone(), gb = b_base.grad().clone();
  a.mutable_grad().reset();
  b_base.mutable_grad().reset();
  torch::Tensor ref = torch::matmul(a, b);
  (ref * up).sum().backward();

  const double tol = dtype == torch::kDouble ? 1e-12 : 1e-5;
  EXPECT_EQ(ours.sizes(), ref.sizes());
  EXPECT_LT(RelDiff(ours, ref), tol);
  EXPECT_LT(RelDiff(ga, a.grad()), tol);
  EXPECT_LT(RelDiff(gb, b_base.grad()), tol);
}

TEST(Kernels, BatchedMatmulEqualsMatmul) {
  for (int threads : {1, 2}) {
    for (bool t : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "threads " << threads << " transposed " << t);
      CheckAgainstMatmul(torch::kFloat, t, threads);
      CheckAgainstMatmul(torch::kDouble, t, threads);
    }
  }
}

TEST(Kernels, BatchedMatmulOutputTakesInPlaceWrites) {
  // The attention writes its masks into the scores in place: the output must not be a view
  // made inside the autograd function.
  torch::Tensor q = torch::randn({2, 8, 4}).requires_grad_(true);
  torch::Tensor k = torch::randn({2, 8, 4}).requires_grad_(true);
  torch::Tensor s = BatchedMatmul(q, k.transpose(-2, -1));
  s.detach().masked_fill_(torch::ones({8, 8}, torch::kBool).triu(1), -1e9);
  torch::softmax(s, -1).sum().backward();
  EXPECT_TRUE(q.grad().defined());
  EXPECT_TRUE(torch::isfinite(q.grad()).all().item<bool>());
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(Kernels, GeluTanhEqualsLibTorch) {
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    // A dense sweep (tails included: 100003 is not a multiple of 8) and the extremes.
    torch::Tensor x =
        torch::cat({torch::linspace(-12, 12, 100003), torch::randn({4099}) * 3,
                    torch::tensor({0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 1e4f, -1e4f})})
            .requires_grad_(true);
    torch::Tensor up = torch::randn(x.sizes());
    torch::Tensor ours = GeluTanh(x);
    (ours * up).sum().backward();
    torch::Tensor ours_grad = x.grad().clone();
    x.mutable_grad().reset();
    torch::Tensor ref = torch::gelu(x, "tanh");  // LibTorch in fp32
    (ref * up).sum().backward();
    torch::Tensor ref_grad = x.grad().clone();
    x.mutable_grad().reset();
    // The truth: the same formula in fp64.
    torch::Tensor x64 = x.detach().to(torch::kDouble).requires_grad_(true);
    torch::Tensor truth = torch::gelu(x64, "tanh");
    (truth * up.to(torch::kDouble)).sum().backward();
    // Error relative to max(1, |value|): fp32 carries ~1e-7 absolute in tanh, and near
    // saturation 1 - tanh^2 multiplies it by up to ~20 in the gradient.
    auto err = [](const torch::Tensor& a, const torch::Tensor& b) {
      return ((a.to(torch::kDouble) - b).abs() / b.abs().clamp_min(1.0)).max().item<double>();
    };
    const double ours_err = err(ours, truth), ref_err = err(ref, truth);
    const double ours_gerr = err(ours_grad, x64.grad()), ref_gerr = err(ref_grad, x64.grad());
    EXPECT_LT(ours_err, 1e-6) << "threads " << threads;
    EXPECT_LT(ours_gerr, 2e-5) << "threads " << threads;
    // As close to the truth as LibTorch's own fp32 GELU, within a factor of 4.
    EXPECT_LT(ours_err, 4 * ref_err + 1e-7) << "LibTorch " << ref_err;
    EXPECT_LT(ours_gerr, 4 * ref_gerr + 1e-7) << "LibTorch " << ref_gerr;
    EXPECT_TRUE(torch::isfinite(ours).all().item<bool>());
    // Not a copy of the reference: the two differ in the last bits somewhere.
    EXPECT_FALSE(torch::equal(ours, ref));
  }
}

// RMSNorm against the same formula in fp64 autograd: values and the gradients of x and w, for 1
// and 2 threads, widths with and without a multiple of 8, and a row of zeros.
TEST(Kernels, RmsNormEqualsFp64Autograd) {
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (int64_t n : {64, 77}) {
      torch::manual_seed(3 + n);
      torch::Tensor x = torch::randn({5, 37, n}) * 3;
      x[1][2].zero_();  // a row of zeros: rsqrt(eps), no NaN
      x.requires_grad_(true);
      torch::Tensor w = (torch::rand({n}) + 0.5).requires_grad_(true);
      torch::Tensor up = torch::randn(x.sizes());
      torch::Tensor ours = RmsNorm(x, w, 1e-6);
      (ours * up).sum().backward();
      torch::Tensor x64 = x.detach().to(torch::kDouble).requires_grad_(true);
      torch::Tensor w64 = w.detach().to(torch::kDouble).requires_grad_(true);
      torch::Tensor truth = x64 * torch::rsqrt(x64.pow(2).mean(-1, true) + 1e-6) * w64;
      (truth * up.to(torch::kDouble)).sum().backward();
      auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
        return ((a.to(torch::kDouble) - b).abs().max() / b.abs().max()).item<double>();
      };
      EXPECT_LT(rel(ours, truth), 1e-6) << n << " threads " << threads;
      EXPECT_LT(rel(x.grad(), x64.grad()), 1e-5) << n << " threads " << threads;
      EXPECT_LT(rel(w.grad(), w64.grad()), 1e-5) << n << " threads " << threads;
      EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
    }
  }
  // Off the fast path (fp64, strided): the same ops LibTorch runs.
  torch::Tensor x = torch::randn({6, 8}, torch::kDouble), w = torch::rand({8}, torch::kDouble);
  EXPECT_TRUE(
      torch::allclose(RmsNorm(x, w, 1e-6), x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6) * w));
}

TEST(Kernels, GeluTanhFallsBackOffTheFastPath) {
  torch::Tensor x = torch::randn({7, 9}, torch::kDouble);
  EXPECT_TRUE(torch::equal(GeluTanh(x), torch::gelu(x, "tanh")));
  torch::Tensor strided = torch::randn({9, 7}).t();
  EXPECT_TRUE(torch::equal(GeluTanh(strided), torch::gelu(strided, "tanh")));
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(Kernels, LinearEqualsLibTorch) {
  torch::set_num_threads(2);
  for (bool bias : {true, false}) {
    for (int64_t rows : {5, 300}) {  // below and above the split threshold
      SCOPED_TRACE(::testing::Message() << "bias " << bias << " rows " << rows);
      torch::manual_seed(9);
      torch::Tensor x = torch::randn({3, rows, 48}).requires_grad_(true);
      torch::Tensor w = torch::randn({40, 48}).requires_grad_(true);
      torch::Tensor b = bias ? torch::randn({40}).requires_grad_(true) : torch::Tensor();
      torch::Tensor up = torch::randn({3, rows, 40});
      torch::Tensor ours = Linear(x, w, b);
      (ours * up).sum().backward();
      torch::Tensor gx = x.grad().clone(), gw = w.grad().clone();
      torch::Tensor gb = bias ? b.grad().clone() : torch::Tensor();
      x.mutable_grad().reset();
      w.mutable_grad().reset();
      if (bias) b.mutable_grad().reset();
      torch::Tensor ref = torch::linear(x, w, b);
      (ref * up).sum().backward();
      EXPECT_LT(RelDiff(ours, ref), 1e-6);
      EXPECT_LT(RelDiff(gx, x.grad()), 1e-6);
      EXPECT_LT(RelDiff(gw, w.grad()), 1e-6);
      if (bias) EXPECT_LT(RelDiff(gb, b.grad()), 1e-6);
    }
  }
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(Kernels, CausalSoftmaxEqualsMaskedSoftmax) {
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (auto [sq, sk] : std::vector<std::pair<int64_t, int64_t>>{{37, 37}, {16, 16}, {5, 21}}) {
      SCOPED_TRACE(::testing::Message() << "threads " << threads << " sq " << sq << " sk " << sk);
      torch::manual_seed(4);
      torch::Tensor x = (torch::randn({2, 3, sq, sk}) * 4).requires_grad_(true);
      torch::Tensor up = torch::randn({2, 3, sq, sk});
      torch::Tensor ours = CausalSoftmax(x);
      (ours * up).sum().backward();
      torch::Tensor gx = x.grad().clone();
      x.mutable_grad().reset();
      torch::Tensor future = torch::ones({sq, sk}, torch::kBool).triu(sk - sq + 1);
      torch::Tensor ref = torch::softmax(x.masked_fill(future, -INFINITY), -1);
      (ref * up).sum().backward();
      EXPECT_LT(RelDiff(ours, ref), 2e-6);
      EXPECT_LT(RelDiff(gx, x.grad()), 2e-6);
      EXPECT_TRUE(torch::equal(ours.masked_select(future.expand_as(ours)),
                               torch::zeros({ours.masked_select(future.expand_as(ours)).numel()})));
      EXPECT_TRUE(torch::equal(gx.masked_select(future.expand_as(gx)),
                               torch::zeros({gx.masked_select(future.expand_as(gx)).numel()})));
    }
  }
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(CpuAllocator, ReusesLargeBlocksAndKeepsContents) {
  InstallCachingCpuAllocator();
  const CpuAllocatorStats before = CachingCpuAllocatorStats();
  void* first = nullptr;
  {
    torch::Tensor a = torch::full({1 << 20}, 3.0f);  // 4 MiB
    first = a.data_ptr();
  }
  torch::Tensor b = torch::zeros({1 << 20});  // same size: the cached block, zeroed as asked
  EXPECT_EQ(b.data_ptr(), first);
  EXPECT_EQ(b.sum().item<float>(), 0.0f);
  torch::Tensor small = torch::ones({16});  // small blocks bypass the cache
  const CpuAllocatorStats after = CachingCpuAllocatorStats();
  EXPECT_GE(after.hits - before.hits, 1);
  // Two live tensors of one size never share a block.
  torch::Tensor c = torch::ones({1 << 20});
  EXPECT_NE(c.data_ptr(), b.data_ptr());
  EXPECT_EQ(b.sum().item<float>(), 0.0f);
  EXPECT_EQ(c.sum().item<float>(), static_cast<float>(1 << 20));
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(CpuAllocator, CountsLiveAndPeakBytes) {
  InstallCachingCpuAllocator();
  ResetCachingCpuAllocatorPeak();
  const CpuAllocatorStats start = CachingCpuAllocatorStats();
  EXPECT_EQ(start.peak_live_bytes, start.live_bytes);
  const int64_t mib4 = int64_t{4} << 20;
  {
    torch::Tensor a = torch::empty({1 << 20});  // 4 MiB
    torch::Tensor b = torch::empty({1 << 20});
    const CpuAllocatorStats both = CachingCpuAllocatorStats();
    EXPECT_EQ(both.live_bytes - start.live_bytes, 2 * mib4);
    EXPECT_EQ(both.peak_live_bytes - start.live_bytes, 2 * mib4);
  }
  const CpuAllocatorStats freed = CachingCpuAllocatorStats();
  EXPECT_EQ(freed.live_bytes, start.live_bytes);                  // both back
  EXPECT_EQ(freed.peak_live_bytes - start.live_bytes, 2 * mib4);  // the peak stays
  torch::Tensor small = torch::empty({1000});                     // below 1 MiB: not counted
  EXPECT_EQ(CachingCpuAllocatorStats().live_bytes, start.live_bytes);
  ResetCachingCpuAllocatorPeak();
  EXPECT_EQ(CachingCpuAllocatorStats().peak_live_bytes, start.live_bytes);
}

TEST(CpuAllocator, IdleCacheStaysWithinTheMostEverLive) {
  InstallCachingCpuAllocator();
  // Blocks of sizes 30% apart (beyond the 4/5 reuse), each freed at once: without eviction the
  // cache would keep all of them (about 480 MiB); it keeps at most the most ever live, the newest.
  int64_t sum = 0;
  void* last = nullptr;
  for (int i = 0; i < 12; ++i) {
    const int64_t n = static_cast<int64_t>((1 << 20) * std::pow(1.3, i));
    torch::Tensor t = torch::empty({n});
    last = t.data_ptr();
    sum += n * 4;
  }
  const CpuAllocatorStats s = CachingCpuAllocatorStats();
  EXPECT_LE(s.cached_bytes, s.high_water_bytes);
  EXPECT_LT(s.cached_bytes, sum);
  // The newest block is still cached: a request of its size gets it back.
  torch::Tensor again = torch::empty({static_cast<int64_t>((1 << 20) * std::pow(1.3, 11))});
  EXPECT_EQ(again.data_ptr(), last);
}

TEST(CpuAllocator, RawAllocationsWork) {
  // LibTorch kernels that take scratch memory through raw_allocate/raw_deallocate (the erf GELU
  // does) must work with the allocator installed.
  InstallCachingCpuAllocator();
  torch::Tensor x = torch::randn({1 << 20});
  torch::Tensor y = torch::gelu(x);
  EXPECT_TRUE(torch::allclose(y, 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0))), 1e-5, 1e-6));
  void* raw = c10::GetCPUAllocator()->raw_allocate(3 << 20);
  ASSERT_NE(raw, nullptr);
  std::memset(raw, 1, 3 << 20);
  c10::GetCPUAllocator()->raw_deallocate(raw);
}

}  // namespace
}  // namespace braid

namespace braid {
namespace {

TEST(Kernels, MaskedSoftmaxEqualsMaskedFillSoftmax) {
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (bool causal : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "threads " << threads << " causal " << causal);
      torch::manual_seed(6);
      const int64_t b = 3, h = 2, s = 19;
      torch::Tensor x = (torch::randn({b, h, s, s}) * 4).requires_grad_(true);
      torch::Tensor pad = torch::zeros({b, s}, torch::kBool);
      pad[0].narrow(0, 12, 7).fill_(true);  // sample 0: the last 7 keys are padding
      pad[2].narrow(0, 1, 3).fill_(true);   // sample 2: a hole (not only at the end)
      torch::Tensor up = torch::randn({b, h, s, s});
      torch::Tensor ours = MaskedSoftmax(x, pad, causal);
      (ours * up).sum().backward();
      torch::Tensor gx = x.grad().clone();
      x.mutable_grad().reset();
      torch::Tensor hidden = pad.view({b, 1, 1, s});
      if (causal) hidden = hidden.logical_or(torch::ones({s, s}, torch::kBool).triu(1));
      torch::Tensor ref = torch::softmax(x.masked_fill(hidden, -INFINITY), -1);
      (ref * up).sum().backward();
      EXPECT_LT(RelDiff(ours, ref), 2e-6);
      EXPECT_LT(RelDiff(gx, x.grad()), 2e-6);
      torch::Tensor hidden_all = hidden.expand_as(ours);
      EXPECT_EQ(ours.masked_select(hidden_all).abs().max().item<float>(), 0.0f);
      EXPECT_EQ(gx.masked_select(hidden_all).abs().max().item<float>(), 0.0f);
    }
  }
}

TEST(Kernels, MaskedSoftmaxRowWithoutKeysIsZero) {
  torch::Tensor x = torch::randn({1, 1, 2, 3});
  torch::Tensor pad = torch::ones({1, 3}, torch::kBool);
  EXPECT_TRUE(torch::equal(MaskedSoftmax(x, pad, false), torch::zeros({1, 1, 2, 3})));
}

}  // namespace
}  // namespace braid

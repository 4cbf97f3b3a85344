// Compute kernels for where LibTorch 1.13's generic op is slow on CPUs (measured in
// BENCHMARKS.md). Each has a plain LibTorch fallback for other devices and dtypes and is checked
// against LibTorch (tests/models/kernels_test.cc, tests/train/optimizer_test.cc).
//
// Threading: LibTorch's BLAS (OpenBLAS here) splits every GEMM across the intra-op threads itself,
// which is poor for the shapes of a small transformer (K = 256: 126 GFLOP/s on 2 threads against
// 195 for two single-threaded halves). These kernels split the work across the intra-op threads
// (at::parallel_for, compiled with OpenMP) and run whole single-threaded GEMMs in each.
#pragma once
#include <torch/torch.h>

namespace braid {

// a @ b over leading batch dimensions: a [..., m, k], b [..., k, n] -> [..., m, n], with
// autograd. On CPU float tensors the batch is split across the intra-op threads, each running
// whole single-threaded GEMMs: LibTorch 1.13's bmm loops over the batch and hands every small
// GEMM to the BLAS's own threads, which costs half its speed at attention sizes (256 x 64 x 256).
// Operands may be transposed views (k.transpose(-2, -1)): the BLAS reads them in place.
torch::Tensor BatchedMatmul(const torch::Tensor& a, const torch::Tensor& b);

// y = x @ w^T + b (b may be undefined) with autograd, x [..., in], w [out, in]: the rows of x (and
// in backward the rows of dy and the rows of dw) are split across the threads. Falls back to
// torch::linear off the CPU, for other dtypes, non-contiguous inputs, one thread or few rows.
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// The two halves of Linear's backward, for layers that run their own (the sequence-parallel
// GEMM in parallel/layers.cc): dx = dy @ w, shaped [..., in] like dy's leading dims, and
// dw = dy^T @ x over all rows, [out, in] in w's dtype. The same row-split kernels on CPU float
// tensors; torch::matmul in dy's dtype (autocast's) otherwise.
torch::Tensor LinearGradInput(const torch::Tensor& dy, const torch::Tensor& w);
torch::Tensor LinearGradWeight(const torch::Tensor& dy, const torch::Tensor& x,
                               const torch::Tensor& w);

// GELU with the tanh approximation (GPT-2's): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
// with autograd. On CPU float tensors one pass forward and one backward, 8 lanes at a time with
// AVX2 (tanh through an exp polynomial, ~1e-7 from LibTorch's), where LibTorch 1.13 computes the
// tanh one element at a time (3 ms per 2M elements here, against 0.6 ms for an exp).
torch::Tensor GeluTanh(const torch::Tensor& x);

// RMSNorm over the last dimension: x * rsqrt(mean(x^2) + eps) * w, with autograd (x and w). On
// CPU fp32 contiguous input one pass per row forward and one backward (the weight's gradient
// summed per thread, then across threads), where LibTorch runs six elementwise ops and their
// backward; elsewhere those ops.
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& w, double eps);

// softmax over the last dimension of attention scores [..., sq, sk] with a causal mask (query i
// sees keys 0 .. i + sk - sq), with autograd: masked entries are 0 in the output and get no
// gradient. On CPU fp32 contiguous input one pass per row over the visible part only (about half
// the row), replacing the mask fill + softmax + softmax backward of LibTorch. Elsewhere: the fill
// and torch::softmax.
torch::Tensor CausalSoftmax(const torch::Tensor& scores);

// softmax over the last dimension of scores [b, h, sq, sk] with keys masked out where
// key_padding [b, sk] is true (and, with `causal`, keys after the query), with autograd: masked
// entries are 0 and get no gradient. A row with every key masked comes out all 0 (LibTorch's
// softmax of all -inf would give NaN). On CPU fp32 contiguous input one fused pass per row;
// elsewhere the fill and torch::softmax (where such a row is NaN).
torch::Tensor MaskedSoftmax(const torch::Tensor& scores, const torch::Tensor& key_padding,
                            bool causal);

// Rotary position embedding (RoPE) fused with the head split: x [b, s, n, d], or [b, s, g, m, d]
// for n = g x m heads in groups (any strides, the last dimension contiguous: a slice of the fused
// QKV output, read in place) -> [b, n, s, d] contiguous, each head
// vector at position p turned by the rotate-half convention (Hugging Face's Llama): the pairs
// (j, j + d/2) rotated by the angle p * theta^(-2j/d), and multiplied by `scale` (the attention's
// 1/sqrt(d) folded in for queries). cos, sin: [s, d/2] from RopeTables. With autograd (the
// gradient is the rotation by the opposite angle, written back in x's layout). On CPU fp32/fp64
// one pass that reads x and writes the result, the same pass the head split's copy makes anyway;
// elsewhere tensor ops.
torch::Tensor RopeHeads(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        double scale);
// cos and sin [s, d/2] of p * theta^(-2j/d) for positions p < s, computed in fp64 and returned
// in `options`' dtype and device.
std::pair<torch::Tensor, torch::Tensor> RopeTables(int64_t s, int64_t d, double theta,
                                                   const torch::TensorOptions& options);

// One AdamW step on one parameter, in place, in a single pass over p, g, m, v (8 lanes at a time
// with AVX2): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p = p decay - step_size m / (sqrt(v) /
// bc2_sqrt + eps). Returns false (and does nothing) where it does not apply: not on the CPU, not
// fp32/fp64, or not contiguous; the caller then uses tensor ops.
bool FusedAdamWStep(torch::Tensor& p, const torch::Tensor& g, torch::Tensor& m, torch::Tensor& v,
                    double decay, double b1, double b2, double bc2_sqrt, double eps,
                    double step_size);

}  // namespace braid

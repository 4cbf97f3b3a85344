// Compute kernels (see kernels.h).
#include "framework/kernels/kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace braid {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// out[i] = x[i] @ y[i] for 3-D x [B, m, k], y [B, k, n] (any strides with a unit stride in one
// of the last two dimensions) into `result` (any shape of B x m x n contiguous elements), parallel
// over i. Returns `result` itself, not a view: the attention masks write into it in place.
torch::Tensor ParallelBmm(const torch::Tensor& x, const torch::Tensor& y, torch::Tensor result) {
  const int64_t batch = x.size(0);
  torch::Tensor out = result.view({batch, x.size(1), y.size(2)});
  // One GEMM is ~8 MFLOP at attention sizes: a grain of 1 keeps every thread busy.
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // worker threads start with grad mode on: mm_out would refuse
    for (int64_t i = begin; i < end; ++i) {
      torch::Tensor o = out.select(0, i);
      at::mm_out(o, x.select(0, i), y.select(0, i));
    }
  });
  return result;
}

bool Blas2d(const torch::Tensor& t) {  // a matrix the BLAS can read as is (maybe transposed)
  return t.stride(-1) == 1 || t.stride(-2) == 1;
}

torch::Tensor Flat3d(const torch::Tensor& t) {
  // [..., r, c] -> [B, r, c] without a copy where the batch dims fold (they do for our layouts).
  torch::Tensor f = t.reshape({-1, t.size(-2), t.size(-1)});
  return Blas2d(f) ? f : f.contiguous();
}

struct BatchedMatmulFn : public torch::autograd::Function<BatchedMatmulFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    std::vector<int64_t> shape = a.sizes().vec();
    shape.back() = b.size(-1);
    return ParallelBmm(Flat3d(a), Flat3d(b), torch::empty(shape, a.options()));
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& a = saved[0];
    const torch::Tensor& b = saved[1];
    torch::Tensor g = Flat3d(grad[0]);
    torch::Tensor ga, gb;
    if (a.requires_grad()) {  // dA = dC @ B^T
      ga = ParallelBmm(g, Flat3d(b).transpose(1, 2), torch::empty(a.sizes(), a.options()));
    }
    if (b.requires_grad()) {  // dB = A^T @ dC
      gb = ParallelBmm(Flat3d(a).transpose(1, 2), g, torch::empty(b.sizes(), b.options()));
    }
    return {ga, gb};
  }
};

// ---- GELU (tanh) ----
// exp(x) for x in [-88, 88]: x = n ln2 + r, |r| <= ln2/2, exp(r) by Cephes' degree-7 polynomial,
// times 2^n through the exponent bits. The scalar and the AVX2 forms do the same operations in the
// same order (no FMA), so an element's value does not depend on which one computed it.
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
constexpr float kC = 0.7978845608028654f, kA = 0.044715f;  // sqrt(2/pi); GPT-2's cubic weight

inline float ExpScalar(float x) {
  x = std::min(88.0f, std::max(-88.0f, x));
  const float n = std::nearbyint(x * kLog2e);
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kP0 * r + kP1;
  p = p * r + kP2;
  p = p * r + kP3;
  p = p * r + kP4;
  p = p * r + kP5;
  p = p * (r * r) + r;
  p = p + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}
inline float TanhScalar(float u) { return 1.0f - 2.0f / (ExpScalar(2.0f * u) + 1.0f); }

__attribute__((target("avx2"))) inline __m256 ExpAvx2(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-88.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Hi)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Lo)));
  __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(kP0), r), _mm256_set1_ps(kP1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP4));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP5));
  p = _mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}
__attribute__((target("avx2"))) inline __m256 TanhAvx2(__m256 u) {
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  return _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(ExpAvx2(_mm256_mul_ps(two, u)), one)));
}

// y = 0.5 x (1 + t), t = tanh(c (x + a x^3)).
inline float GeluScalar(float x) {
  const float t = TanhScalar(kC * (x + kA * (x * x * x)));
  return 0.5f * x * (1.0f + t);
}
// dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
inline float GeluGradScalar(float x) {
  const float x2 = x * x;
  const float t = TanhScalar(kC * (x + kA * (x2 * x)));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kC * (1.0f + 3.0f * kA * x2);
}

__attribute__((target("avx2"))) void GeluRangeAvx2(const float* x, float* y, int64_t n) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 c = _mm256_set1_ps(kC), a = _mm256_set1_ps(kA);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    const __m256 t = TanhAvx2(_mm256_mul_ps(c, _mm256_add_ps(v, _mm256_mul_ps(a, cube))));
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
  }
  for (; j < n; ++j) y[j] = GeluScalar(x[j]);
}
// dx = g * gelu'(x)
__attribute__((target("avx2"))) void GeluGradRangeAvx2(const float* x, const float* g, float* dx,
                                                       int64_t n) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 c = _mm256_set1_ps(kC), a = _mm256_set1_ps(kA), a3 = _mm256_set1_ps(3.0f * kA);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    const __m256 x2 = _mm256_mul_ps(v, v);
    const __m256 t =
        TanhAvx2(_mm256_mul_ps(c, _mm256_add_ps(v, _mm256_mul_ps(a, _mm256_mul_ps(x2, v)))));
    const __m256 left = _mm256_mul_ps(half, _mm256_add_ps(one, t));
    __m256 right = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_sub_ps(one, _mm256_mul_ps(t, t)));
    right = _mm256_mul_ps(_mm256_mul_ps(right, c), _mm256_add_ps(one, _mm256_mul_ps(a3, x2)));
    _mm256_storeu_ps(dx + j, _mm256_mul_ps(_mm256_loadu_ps(g + j), _mm256_add_ps(left, right)));
  }
  for (; j < n; ++j) dx[j] = g[j] * GeluGradScalar(x[j]);
}

bool HaveAvx2() {
  static const bool yes = [] {
    __builtin_cpu_init();  // needed where this runs before main (static initialisers)
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

torch::Tensor GeluForward(const torch::Tensor& x) {
  torch::Tensor y = torch::empty_like(x);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  at::parallel_for(0, x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    if (HaveAvx2()) {
      GeluRangeAvx2(in + b, out + b, e - b);
    } else {
      for (int64_t j = b; j < e; ++j) out[j] = GeluScalar(in[j]);
    }
  });
  return y;
}

struct GeluTanhFn : public torch::autograd::Function<GeluTanhFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return GeluForward(x);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    torch::Tensor x = ctx->get_saved_variables()[0];
    torch::Tensor g = grad[0].contiguous();
    torch::Tensor dx = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* out = dx.data_ptr<float>();
    at::parallel_for(0, x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
      if (HaveAvx2()) {
        GeluGradRangeAvx2(xp + b, gp + b, out + b, e - b);
      } else {
        for (int64_t j = b; j < e; ++j) out[j] = gp[j] * GeluGradScalar(xp[j]);
      }
    });
    return {dx};
  }
};

// ---- RMSNorm ----
torch::Tensor RmsNormReference(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * w;
}

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               double eps) {
    const int64_t n = x.size(-1), rows = x.numel() / n;
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor r = torch::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = r.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* xi = xp + i * n;
        float ss = 0;
        for (int64_t j = 0; j < n; ++j) ss += xi[j] * xi[j];
        const float ri = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
        rp[i] = ri;
        float* yi = yp + i * n;
        for (int64_t j = 0; j < n; ++j) yi[j] = xi[j] * ri * wp[j];
      }
    });
    ctx->save_for_backward({x, w, r});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &w = saved[1], &r = saved[2];
    torch::Tensor g = grad[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    const int threads = at::get_num_threads();
    torch::Tensor dx = torch::empty_like(x);
    torch::Tensor dw_parts = torch::zeros({threads, n}, w.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* rp = r.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* dwp = dw_parts.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t b, int64_t e) {
      float* dw = dwp + at::get_thread_num() * n;
      for (int64_t i = b; i < e; ++i) {
        const float* xi = xp + i * n;
        const float* gi = gp + i * n;
        const float ri = rp[i];
        float dot = 0;
        for (int64_t j = 0; j < n; ++j) dot += gi[j] * wp[j] * xi[j];
        const float c = ri * ri * ri * dot / static_cast<float>(n);
        float* dxi = dxp + i * n;
        for (int64_t j = 0; j < n; ++j) {
          dxi[j] = ri * gi[j] * wp[j] - c * xi[j];
          dw[j] += gi[j] * xi[j] * ri;
        }
      }
    });
    return {dx, dw_parts.sum(0), torch::Tensor()};
  }
};

// ---- RoPE ----
// Heads are (group, member) pairs so that a grouped-query QKV slice [b, s, groups, per, d] reads
// in place; an ungrouped one is [b, s, heads, 1, d].
struct HeadStrides {
  int64_t b, g, m, s;  // element strides of the batch, group, member and position indices
};

// dst = scale * R(sign * angle) src, rows (batch, group, member, position) of d elements with a
// unit stride, where R turns the pairs (j, j + d/2) of a row at position p by the angle whose cos
// and sin are row p of the tables.
template <typename T>
void RotateRows(const T* src, HeadStrides ss, T* dst, HeadStrides ds, int64_t b, int64_t g,
                int64_t m, int64_t s, int64_t d, const T* cp, const T* np, T scale, T sign) {
  const int64_t half = d / 2;
  at::parallel_for(0, b * g * m * s, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t is = r % s, im = (r / s) % m, ig = (r / (s * m)) % g, ib = r / (s * m * g);
      const T* x = src + ib * ss.b + ig * ss.g + im * ss.m + is * ss.s;
      T* y = dst + ib * ds.b + ig * ds.g + im * ds.m + is * ds.s;
      const T* c = cp + is * half;
      const T* sn = np + is * half;
      for (int64_t j = 0; j < half; ++j) {
        const T x1 = x[j], x2 = x[j + half], sj = sign * sn[j];
        y[j] = scale * (x1 * c[j] - x2 * sj);
        y[j + half] = scale * (x2 * c[j] + x1 * sj);
      }
    }
  });
}

// x [b, s, g, m, d] -> [b, g * m, s, d].
struct RopeHeadsFn : public torch::autograd::Function<RopeHeadsFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin, double scale) {
    const int64_t b = x.size(0), s = x.size(1), g = x.size(2), m = x.size(3), d = x.size(4);
    torch::Tensor out = torch::empty({b, g * m, s, d}, x.options());
    const HeadStrides xs{x.stride(0), x.stride(2), x.stride(3), x.stride(1)};
    const HeadStrides os{g * m * s * d, m * s * d, s * d, d};
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rope", [&] {
      RotateRows<scalar_t>(x.data_ptr<scalar_t>(), xs, out.data_ptr<scalar_t>(), os, b, g, m, s, d,
                           cos.data_ptr<scalar_t>(), sin.data_ptr<scalar_t>(),
                           static_cast<scalar_t>(scale), 1);
    });
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["shape"] = x.sizes().vec();
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    auto saved = ctx->get_saved_variables();
    const double scale = ctx->saved_data["scale"].toDouble();
    const std::vector<int64_t> shape = ctx->saved_data["shape"].toIntVector();
    const int64_t b = shape[0], s = shape[1], g = shape[2], m = shape[3], d = shape[4];
    torch::Tensor go = grad[0].contiguous();  // [b, g * m, s, d]
    torch::Tensor dx = torch::empty(shape, go.options());
    const HeadStrides gs{g * m * s * d, m * s * d, s * d, d};
    const HeadStrides xs{s * g * m * d, m * d, d, g * m * d};
    AT_DISPATCH_FLOATING_TYPES(go.scalar_type(), "rope_backward", [&] {
      RotateRows<scalar_t>(go.data_ptr<scalar_t>(), gs, dx.data_ptr<scalar_t>(), xs, b, g, m, s, d,
                           saved[0].data_ptr<scalar_t>(), saved[1].data_ptr<scalar_t>(),
                           static_cast<scalar_t>(scale), -1);
    });
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// ---- Causal softmax ----
__attribute__((target("avx2"))) float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
__attribute__((target("avx2"))) float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// One row: y[0..n) = softmax(x[0..n)), y[n..len) = 0.
__attribute__((target("avx2"))) void SoftmaxRowAvx2(const float* x, float* y, int64_t n,
                                                    int64_t len) {
  int64_t j = 0;
  __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (; j + 8 <= n; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + j));
  float mx = HorizontalMax(vmax);
  for (; j < n; ++j) mx = std::max(mx, x[j]);
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = ExpAvx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
    _mm256_storeu_ps(y + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = HorizontalSum(vsum);
  for (; j < n; ++j) {
    y[j] = ExpScalar(x[j] - mx);
    sum += y[j];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8)
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_loadu_ps(y + j), inv));
  for (; j < n; ++j) y[j] *= 1.0f / sum;
  for (j = n; j < len; ++j) y[j] = 0.0f;
}

// dx[0..n) = y (dy - sum(y dy)), dx[n..len) = 0.
__attribute__((target("avx2"))) void SoftmaxGradRowAvx2(const float* y, const float* dy, float* dx,
                                                        int64_t n, int64_t len) {
  int64_t j = 0;
  __m256 vdot = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    vdot = _mm256_add_ps(vdot, _mm256_mul_ps(_mm256_loadu_ps(y + j), _mm256_loadu_ps(dy + j)));
  }
  float dot = HorizontalSum(vdot);
  for (; j < n; ++j) dot += y[j] * dy[j];
  const __m256 vd = _mm256_set1_ps(dot);
  for (j = 0; j + 8 <= n; j += 8) {
    _mm256_storeu_ps(
        dx + j, _mm256_mul_ps(_mm256_loadu_ps(y + j), _mm256_sub_ps(_mm256_loadu_ps(dy + j), vd)));
  }
  for (; j < n; ++j) dx[j] = y[j] * (dy[j] - dot);
  for (j = n; j < len; ++j) dx[j] = 0.0f;
}

// Rows of [rows, sq, sk] blocks: row r is query (r % sq) and sees keys [0, r % sq + sk - sq].
template <typename RowFn>
void ForCausalRows(int64_t rows, int64_t sq, int64_t sk, const RowFn& fn) {
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t visible = std::min(sk, r % sq + sk - sq + 1);
      fn(r, std::max<int64_t>(visible, 0));
    }
  });
}

struct CausalSoftmaxFn : public torch::autograd::Function<CausalSoftmaxFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    const int64_t sq = x.size(-2), sk = x.size(-1);
    torch::Tensor y = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    float* out = y.data_ptr<float>();
    ForCausalRows(x.numel() / sk, sq, sk,
                  [&](int64_t r, int64_t n) { SoftmaxRowAvx2(in + r * sk, out + r * sk, n, sk); });
    ctx->save_for_backward({y});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    torch::Tensor y = ctx->get_saved_variables()[0];
    torch::Tensor dy = grad[0].contiguous();
    const int64_t sq = y.size(-2), sk = y.size(-1);
    torch::Tensor dx = torch::empty_like(y);
    const float* yp = y.data_ptr<float>();
    const float* gp = dy.data_ptr<float>();
    float* out = dx.data_ptr<float>();
    ForCausalRows(y.numel() / sk, sq, sk, [&](int64_t r, int64_t n) {
      SoftmaxGradRowAvx2(yp + r * sk, gp + r * sk, out + r * sk, n, sk);
    });
    return {dx};
  }
};

// Padding (and optionally causal) mask: rows r of [b, h, sq, sk] read the mask row of batch
// r / (h sq). The masked entries become -inf, the row is softmaxed in place, and the masked
// entries are then set to exactly 0 (the exp polynomial floors at e^-88, not 0).
struct MaskedSoftmaxFn : public torch::autograd::Function<MaskedSoftmaxFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& key_padding, bool causal) {
    const int64_t b = x.size(0), per_batch = x.numel() / b, sq = x.size(-2), sk = x.size(-1);
    torch::Tensor pad = key_padding.to(torch::kBool).contiguous();
    torch::Tensor y = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    const bool* mask = pad.data_ptr<bool>();
    float* out = y.data_ptr<float>();
    const float neg_inf = -std::numeric_limits<float>::infinity();
    at::parallel_for(0, x.numel() / sk, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const bool* m = mask + (r * sk / per_batch) * sk;
        const int64_t limit = causal ? std::min(sk, r % sq + sk - sq + 1) : sk;
        const float* xr = in + r * sk;
        float* yr = out + r * sk;
        bool any = false;
        for (int64_t j = 0; j < sk; ++j) {
          const bool hidden = m[j] || j >= limit;
          yr[j] = hidden ? neg_inf : xr[j];
          any = any || !hidden;
        }
        if (!any) {
          std::fill(yr, yr + sk, 0.0f);
          continue;
        }
        SoftmaxRowAvx2(yr, yr, sk, sk);
        for (int64_t j = 0; j < sk; ++j) {
          if (m[j] || j >= limit) yr[j] = 0.0f;
        }
      }
    });
    ctx->save_for_backward({y});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    // y is 0 where masked, so the plain softmax gradient over the whole row is 0 there too.
    torch::Tensor y = ctx->get_saved_variables()[0];
    torch::Tensor dy = grad[0].contiguous();
    const int64_t sk = y.size(-1);
    torch::Tensor dx = torch::empty_like(y);
    const float* yp = y.data_ptr<float>();
    const float* gp = dy.data_ptr<float>();
    float* out = dx.data_ptr<float>();
    at::parallel_for(0, y.numel() / sk, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        SoftmaxGradRowAvx2(yp + r * sk, gp + r * sk, out + r * sk, sk, sk);
      }
    });
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// ---- AdamW ----
template <typename T>
void UpdateRange(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                 int64_t n, T decay, T b1, T b2, T bc2_sqrt, T eps, T step_size) {
  const T one_b1 = T(1) - b1, one_b2 = T(1) - b2;
  for (int64_t j = 0; j < n; ++j) {
    const T gj = g[j];
    const T mj = m[j] * b1 + one_b1 * gj;
    const T vj = v[j] * b2 + one_b2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    p[j] = p[j] * decay - step_size * (mj / (std::sqrt(vj) / bc2_sqrt + eps));
  }
}

// fp32 with AVX2 (chosen at run time): 8 lanes at a time, the same operations in the same order
// (no FMA), so the result equals the scalar loop's.
__attribute__((target("avx2"))) void UpdateRangeAvx2(float* p, const float* g, float* m, float* v,
                                                     int64_t n, float decay, float b1, float b2,
                                                     float bc2_sqrt, float eps, float step_size) {
  const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
  const __m256 v1b1 = _mm256_set1_ps(1.0f - b1), v1b2 = _mm256_set1_ps(1.0f - b2);
  const __m256 vbc2 = _mm256_set1_ps(bc2_sqrt), veps = _mm256_set1_ps(eps);
  const __m256 vdecay = _mm256_set1_ps(decay), vstep = _mm256_set1_ps(step_size);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 gj = _mm256_loadu_ps(g + j);
    const __m256 mj =
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + j), vb1), _mm256_mul_ps(v1b1, gj));
    const __m256 vj = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + j), vb2),
                                    _mm256_mul_ps(_mm256_mul_ps(v1b2, gj), gj));
    _mm256_storeu_ps(m + j, mj);
    _mm256_storeu_ps(v + j, vj);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vj), vbc2), veps);
    const __m256 upd = _mm256_mul_ps(vstep, _mm256_div_ps(mj, denom));
    _mm256_storeu_ps(p + j, _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + j), vdecay), upd));
  }
  UpdateRange<float>(p + j, g + j, m + j, v + j, n - j, decay, b1, b2, bc2_sqrt, eps, step_size);
}

template <typename T>
void FusedUpdate(T* p, const T* g, T* m, T* v, int64_t n, T decay, T b1, T b2, T bc2_sqrt, T eps,
                 T step_size) {
  at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) {
      if (HaveAvx2()) {
        UpdateRangeAvx2(p + begin, g + begin, m + begin, v + begin, end - begin, decay, b1, b2,
                        bc2_sqrt, eps, step_size);
        return;
      }
    }
    UpdateRange(p + begin, g + begin, m + begin, v + begin, end - begin, decay, b1, b2, bc2_sqrt,
                eps, step_size);
  });
}

// ---- Linear ----
// out[rows r0..r1) = x[r0..r1) @ w^T (+ b), per thread, single-threaded GEMMs.
void LinearRows(const torch::Tensor& x2, const torch::Tensor& w, const torch::Tensor& b,
                const torch::Tensor& out2) {
  const int64_t rows = x2.size(0);
  const int64_t parts = std::min<int64_t>(at::get_num_threads(), rows);
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = rows * t / parts, r1 = rows * (t + 1) / parts;
      torch::Tensor o = out2.narrow(0, r0, r1 - r0);
      if (b.defined()) {
        at::addmm_out(o, b, x2.narrow(0, r0, r1 - r0), w.t());
      } else {
        at::mm_out(o, x2.narrow(0, r0, r1 - r0), w.t());
      }
    }
  });
}

torch::Tensor LinearForward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                            const torch::Tensor& b) {
  ctx->save_for_backward({x, w});
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = w.size(0);
  torch::Tensor out = torch::empty(shape, x.options());
  LinearRows(x.view({-1, x.size(-1)}), w, b, out.view({-1, w.size(0)}));
  return out;
}

// Whether the row-split kernels take a GEMM of `rows` rows over float operands a and b.
bool RowSplit(const torch::Tensor& a, const torch::Tensor& b, int64_t rows) {
  return a.device().is_cpu() && a.scalar_type() == torch::kFloat &&
         b.scalar_type() == torch::kFloat && at::get_num_threads() > 1 && rows >= 64 &&
         !at::in_parallel_region();
}

// {dx, dw, db} (db undefined without a bias).
tensor_list LinearBackward(AutogradContext* ctx, const torch::Tensor& dy, bool has_bias) {
  auto saved = ctx->get_saved_variables();
  const torch::Tensor& x = saved[0];
  const torch::Tensor& w = saved[1];
  torch::Tensor dx, dw, db;
  if (x.requires_grad()) dx = LinearGradInput(dy, w);
  if (w.requires_grad()) dw = LinearGradWeight(dy, x, w);
  if (has_bias) db = dy.reshape({-1, w.size(0)}).sum(0);
  return {dx, dw, db};
}

// Two functions: an undefined tensor cannot be an autograd input.
struct LinearFn : public torch::autograd::Function<LinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    return LinearForward(ctx, x, w, b);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    return LinearBackward(ctx, grad[0], true);
  }
};
struct LinearNoBiasFn : public torch::autograd::Function<LinearNoBiasFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    return LinearForward(ctx, x, w, torch::Tensor());
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    tensor_list g = LinearBackward(ctx, grad[0], false);
    g.pop_back();
    return g;
  }
};

}  // namespace

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const bool fast = x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                    w.scalar_type() == torch::kFloat && x.is_contiguous() && w.is_contiguous() &&
                    (!b.defined() || (b.scalar_type() == torch::kFloat && b.is_contiguous())) &&
                    at::get_num_threads() > 1 && x.numel() / x.size(-1) >= 64 &&
                    !at::in_parallel_region();
  if (!fast) return torch::linear(x, w, b);
  return b.defined() ? LinearFn::apply(x, w, b) : LinearNoBiasFn::apply(x, w);
}

torch::Tensor LinearGradInput(const torch::Tensor& dy, const torch::Tensor& w) {
  const int64_t in = w.size(1), out_f = w.size(0);
  torch::Tensor g = dy.reshape({-1, out_f}).contiguous();
  std::vector<int64_t> shape = dy.sizes().vec();
  shape.back() = in;
  if (!RowSplit(g, w, g.size(0)) || !w.is_contiguous()) {
    return torch::matmul(g, w.to(g.scalar_type())).view(shape);
  }
  torch::Tensor dx = torch::empty({g.size(0), in}, g.options());
  LinearRows(g, w.t(), torch::Tensor(), dx);  // split by rows of g
  return dx.view(shape);
}

torch::Tensor LinearGradWeight(const torch::Tensor& dy, const torch::Tensor& x,
                               const torch::Tensor& w) {
  const int64_t in = w.size(1), out_f = w.size(0);
  torch::Tensor g = dy.reshape({-1, out_f}).contiguous();
  torch::Tensor rows = x.reshape({-1, in}).contiguous();
  if (!RowSplit(g, rows, g.size(0)) || !w.is_contiguous()) {
    return torch::matmul(g.t(), rows.to(g.scalar_type())).to(w.scalar_type());
  }
  torch::Tensor dw = torch::empty(w.sizes(), w.options());
  LinearRows(g.t(), rows.t(), torch::Tensor(), dw);  // split by rows of dw (output features)
  return dw;
}

// [sq, sk] bool, true where a query may not see a key (the last query sees every key).
torch::Tensor FutureMask(int64_t sq, int64_t sk, const torch::TensorOptions& like) {
  return torch::ones({sq, sk}, like.dtype(torch::kBool)).triu(sk - sq + 1);
}

torch::Tensor CausalSoftmax(const torch::Tensor& scores) {
  const bool fast = scores.device().is_cpu() && scores.scalar_type() == torch::kFloat &&
                    scores.is_contiguous() && scores.dim() >= 2 && HaveAvx2();
  if (fast) return CausalSoftmaxFn::apply(scores);
  torch::Tensor future = FutureMask(scores.size(-2), scores.size(-1), scores.options());
  return torch::softmax(scores.masked_fill(future, -std::numeric_limits<float>::infinity()), -1);
}

torch::Tensor MaskedSoftmax(const torch::Tensor& scores, const torch::Tensor& key_padding,
                            bool causal) {
  const bool fast = scores.device().is_cpu() && key_padding.device().is_cpu() &&
                    scores.scalar_type() == torch::kFloat && scores.is_contiguous() &&
                    scores.dim() == 4 && key_padding.dim() == 2 &&
                    key_padding.size(0) == scores.size(0) &&
                    key_padding.size(1) == scores.size(3) && HaveAvx2();
  if (fast) return MaskedSoftmaxFn::apply(scores, key_padding, causal);
  const int64_t sq = scores.size(-2), sk = scores.size(-1);
  torch::Tensor hidden = key_padding.to(torch::kBool).view({scores.size(0), 1, 1, sk});
  if (causal) hidden = hidden.logical_or(FutureMask(sq, sk, scores.options()));
  return torch::softmax(scores.masked_fill(hidden, -std::numeric_limits<float>::infinity()), -1);
}

bool FusedAdamWStep(torch::Tensor& p, const torch::Tensor& g, torch::Tensor& m, torch::Tensor& v,
                    double decay, double b1, double b2, double bc2_sqrt, double eps,
                    double step_size) {
  const bool fused = p.device().is_cpu() && p.is_contiguous() && g.is_contiguous() &&
                     m.is_contiguous() && v.is_contiguous() && g.scalar_type() == p.scalar_type() &&
                     m.scalar_type() == p.scalar_type() && v.scalar_type() == p.scalar_type() &&
                     (p.scalar_type() == torch::kFloat || p.scalar_type() == torch::kDouble);
  if (!fused) return false;
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "adamw", [&] {
    FusedUpdate<scalar_t>(p.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(),
                          v.data_ptr<scalar_t>(), p.numel(), static_cast<scalar_t>(decay),
                          static_cast<scalar_t>(b1), static_cast<scalar_t>(b2),
                          static_cast<scalar_t>(bc2_sqrt), static_cast<scalar_t>(eps),
                          static_cast<scalar_t>(step_size));
  });
  return true;
}

torch::Tensor GeluTanh(const torch::Tensor& x) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat || !x.is_contiguous()) {
    return torch::gelu(x, "tanh");
  }
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return GeluForward(x);
  return GeluTanhFn::apply(x);
}

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const bool fast = x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                    w.scalar_type() == torch::kFloat && x.is_contiguous() && w.is_contiguous() &&
                    x.dim() >= 1 && x.size(-1) == w.numel() && x.numel() > 0;
  if (!fast) return RmsNormReference(x, w, eps);
  return RmsNormFn::apply(x, w, eps);
}

torch::Tensor RopeHeads(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        double scale) {
  torch::Tensor x5 = x.dim() == 4 ? x.unsqueeze(3) : x;  // [b, s, g, m, d]
  const bool fast = x5.device().is_cpu() && x5.dim() == 5 && x5.stride(-1) == 1 &&
                    (x5.scalar_type() == torch::kFloat || x5.scalar_type() == torch::kDouble) &&
                    cos.scalar_type() == x5.scalar_type() &&
                    sin.scalar_type() == x5.scalar_type() && cos.is_contiguous() &&
                    sin.is_contiguous() && cos.size(0) == x5.size(1) &&
                    2 * cos.size(1) == x5.size(4);
  if (fast) return RopeHeadsFn::apply(x5, cos, sin, scale);
  const int64_t half = x5.size(4) / 2;
  torch::Tensor t = x5.flatten(2, 3).transpose(1, 2);  // [b, n, s, d]
  torch::Tensor x1 = t.narrow(-1, 0, half), x2 = t.narrow(-1, half, half);
  torch::Tensor c = torch::cat({cos, cos}, -1), sn = torch::cat({sin, sin}, -1);
  return ((t * c + torch::cat({-x2, x1}, -1) * sn) * scale).contiguous();
}

std::pair<torch::Tensor, torch::Tensor> RopeTables(int64_t s, int64_t d, double theta,
                                                   const torch::TensorOptions& options) {
  torch::Tensor inv = torch::pow(theta, -torch::arange(0, d, 2, torch::kDouble) / d);
  torch::Tensor angle = torch::arange(s, torch::kDouble).unsqueeze(1) * inv.unsqueeze(0);
  return {angle.cos().to(options), angle.sin().to(options)};
}

torch::Tensor BatchedMatmul(const torch::Tensor& a, const torch::Tensor& b) {
  const bool fast = a.device().is_cpu() && b.device().is_cpu() &&
                    a.scalar_type() == torch::kFloat && b.scalar_type() == torch::kFloat &&
                    a.dim() >= 3 && a.dim() == b.dim() &&
                    a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2);
  if (!fast) return torch::matmul(a, b);
  return BatchedMatmulFn::apply(a, b);
}

}  // namespace braid

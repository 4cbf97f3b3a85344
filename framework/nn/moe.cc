#include "framework/nn/moe.h"

#include <c10/core/DispatchKeySet.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/core/check.h"
#include "framework/parallel/aux_loss.h"
#include "framework/parallel/exchange.h"
#include "framework/parallel/mappings.h"

namespace braid {
namespace {

// One weight named "weight" (a router, an expert's fc1 or fc2, a gate), so that the parameter
// names read experts.{e}.fc1.weight like a dense MLP's mlp.fc1.weight.
class OneWeight : public TpModule {
 public:
  OneWeight(const TpEnv& env, const std::string& name, const std::vector<int64_t>& shape,
            double std, TpParam layout) {
    weight = Param("weight", InitShard(env, name + ".weight", shape, std, layout), layout);
  }
  torch::Tensor weight;
};

}  // namespace

int64_t MoeCapacity(const MoeBlock& moe, int64_t tokens) {
  if (moe.capacity_factor <= 0) return 0;
  return static_cast<int64_t>(std::ceil(static_cast<double>(tokens * moe.top_k) /
                                        static_cast<double>(moe.experts) * moe.capacity_factor));
}

RouterOutput Route(const torch::Tensor& logits, const MoeBlock& moe) {
  RouterOutput r;
  const int64_t tokens = logits.size(0), k = moe.top_k, e = moe.experts;
  r.probs = torch::softmax(logits, -1);
  if (moe.pre_softmax) {  // the top-k of the softmax over all experts, as they are
    auto [w, idx] = r.probs.topk(k, -1);
    r.weights = w;
    r.top_experts = idx;
  } else {  // a softmax over the top-k logits
    auto [l, idx] = logits.topk(k, -1);
    r.weights = torch::softmax(l, -1);
    r.top_experts = idx;
  }
  const torch::Tensor chosen = torch::bincount(r.top_experts.reshape({-1}), {}, e);
  // E/k x sum_e P_e f_e with f_e = count_e / tokens: 1 when every expert has tokens x k / E.
  r.aux = (r.probs.mean(0) * chosen.to(r.probs.scalar_type())).sum() *
          (static_cast<double>(e) / static_cast<double>(k * tokens));
  r.z = torch::logsumexp(logits, -1).square().mean();
  const int64_t capacity = MoeCapacity(moe, tokens);
  if (capacity > 0) {
    // Token-major order (token t's choices before token t+1's): an assignment's place among its
    // expert's is the count of earlier assignments to that expert.
    const torch::Tensor flat = r.top_experts.reshape({-1});
    const torch::Tensor place =
        (torch::one_hot(flat, e).cumsum(0) - 1).gather(1, flat.unsqueeze(1)).squeeze(1);
    r.kept = (place < capacity).reshape({tokens, k});
  } else {
    r.kept = torch::ones({tokens, k}, logits.options().dtype(torch::kBool));
  }
  return r;
}

MoeMlp::MoeMlp(const TpEnv& env, const std::string& name, const BlockConfig& c)
    : moe_(c.moe), activation_(c.activation), name_(name), tp_(env.tp) {
  BRAID_CHECK(moe_.experts > 0 && moe_.top_k >= 1 && moe_.top_k <= moe_.experts)
      << name << ": " << moe_.top_k << " of " << moe_.experts << " experts";
  local_ = moe_.experts;
  if (env.ep && env.ep->size() > 1) {
    ep_ = env.ep;
    BRAID_CHECK(moe_.experts % ep_->size() == 0)
        << name << ": " << moe_.experts << " experts over " << ep_->size() << " EP ranks";
    local_ = moe_.experts / ep_->size();
    first_ = local_ * ep_->rank();
  }
  sequence_ = env.sequence_parallel && env.size() > 1;
  router_ = register_module(
                "router", std::make_shared<OneWeight>(env, name + ".router",
                                                      std::vector<int64_t>{moe_.experts, c.hidden},
                                                      c.init_std, TpParam{}))
                ->weight;
  const bool gated = IsGated(c.activation);
  auto experts = register_module("experts", std::make_shared<torch::nn::Module>());
  TpParam fc1_layout{0, gated ? 2 : 1}, fc2_layout{1, 1};
  fc1_layout.expert = fc2_layout.expert = true;
  for (int64_t e = first_; e < first_ + local_; ++e) {
    const std::string n = absl::StrCat(name, ".experts.", e);
    auto expert =
        experts->register_module(std::to_string(e), std::make_shared<torch::nn::Module>());
    fc1_.push_back(
        expert
            ->register_module("fc1", std::make_shared<OneWeight>(
                                         env, n + ".fc1",
                                         std::vector<int64_t>{(gated ? 2 : 1) * moe_.ffn, c.hidden},
                                         c.init_std, fc1_layout))
            ->weight);
    fc2_.push_back(
        expert
            ->register_module("fc2", std::make_shared<OneWeight>(
                                         env, n + ".fc2", std::vector<int64_t>{c.hidden, moe_.ffn},
                                         c.output_init_std, fc2_layout))
            ->weight);
  }
  if (moe_.shared > 0) {
    BlockConfig s = c;
    s.ffn = moe_.shared * moe_.ffn;
    s.bias = false;
    shared_ = register_module("shared", std::make_shared<Mlp>(env, name + ".shared", s));
    if (moe_.shared_gate) {
      shared_gate_ = register_module("shared_gate",
                                     std::make_shared<OneWeight>(env, name + ".shared_gate",
                                                                 std::vector<int64_t>{1, c.hidden},
                                                                 c.init_std, TpParam{}))
                         ->weight;
    }
  }
}

torch::Tensor MoeMlp::forward(const torch::Tensor& x) {
  torch::Tensor shared;
  if (shared_) {
    shared = shared_->forward(x);
    if (shared_gate_.defined()) {  // on this rank's positions: the gate's gradient summed over TP
      const torch::Tensor g = sequence_ ? CopyToTp(shared_gate_, *tp_) : shared_gate_;
      shared = torch::sigmoid(torch::matmul(x, g.t())) * shared;
    }
  }
  const torch::Tensor whole = sequence_ ? GatherFromSequence(x, *tp_) : x;
  const int64_t hidden = whole.size(-1);
  const torch::Tensor tokens = whole.reshape({-1, hidden});
  const int64_t n = tokens.size(0), k = moe_.top_k;
  torch::Tensor logits;
  {  // fp32 logits (fp64 stays fp64), outside autocast
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto type = tokens.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    logits = torch::matmul(tokens.to(type), router_.to(type).t());
  }
  const RouterOutput r = Route(logits, moe_);
  torch::Tensor expert = r.top_experts.reshape({-1});
  torch::Tensor weight = r.weights.reshape({-1});
  torch::Tensor token = torch::arange(n, expert.options()).repeat_interleave(k);
  if (moe_.capacity_factor > 0) {
    const torch::Tensor kept = r.kept.reshape({-1}).nonzero().squeeze(1);
    expert = expert.index_select(0, kept);
    weight = weight.index_select(0, kept);
    token = token.index_select(0, kept);
  }
  // Sorted by expert (stable: each expert's tokens in token order), each expert's rows contiguous.
  const torch::Tensor order = std::get<1>(expert.sort(/*stable=*/true, 0, false));
  const torch::Tensor counts = torch::bincount(expert, {}, moe_.experts);
  const torch::Tensor host = counts.cpu();
  const int64_t* count = host.data_ptr<int64_t>();
  const torch::Tensor source = token.index_select(0, order);
  const torch::Tensor in = CopyToTp(tokens, *tp_).index_select(0, source);
  const torch::Tensor ys = ep_ ? Dispatch(in, host) : RunExperts(in, count);
  const torch::Tensor w = CopyToTp(weight.index_select(0, order), *tp_).to(ys.scalar_type());
  torch::Tensor out =
      torch::zeros({n, hidden}, ys.options()).index_add(0, source, ys * w.unsqueeze(1));
  out = out.reshape(whole.sizes());
  out = sequence_ ? ReduceScatterToSequence(out, *tp_) : ReduceFromTp(out, *tp_);
  if (shared.defined()) out = out + shared;
  if (torch::GradMode::is_enabled() && (moe_.aux_coeff > 0 || moe_.z_coeff > 0)) {
    out = AttachAuxLoss(out, r.aux * moe_.aux_coeff + r.z * moe_.z_coeff);
  }
  last_.kept = r.kept;
  last_.counts = counts;
  last_.aux = r.aux.detach();
  last_.z = r.z.detach();
  return out;
}

torch::Tensor MoeMlp::RunExperts(const torch::Tensor& rows, const int64_t* count) {
  std::vector<torch::Tensor> outs;
  int64_t offset = 0;
  for (int64_t l = 0; l < local_; ++l) {
    const torch::Tensor x = rows.narrow(0, offset, count[l]);
    outs.push_back(
        torch::matmul(Activate(torch::matmul(x, fc1_[l].t()), activation_), fc2_[l].t()));
    offset += count[l];
  }
  return torch::cat(outs, 0);
}

torch::Tensor MoeMlp::Dispatch(const torch::Tensor& in, const torch::Tensor& host_counts) {
  const int ranks = ep_->size();
  const int64_t per = local_;
  const int64_t* count = host_counts.data_ptr<int64_t>();
  // Rank r holds experts [r x per, (r + 1) x per): the rows sorted by expert go out in rank order.
  std::vector<int64_t> send(ranks, 0), recv(ranks, 0);
  for (int64_t e = 0; e < moe_.experts; ++e) send[e / per] += count[e];
  // got[s][l]: the rows source s sends for local expert l, in the order s sorted them.
  torch::Tensor got = torch::empty({moe_.experts}, host_counts.options());
  BRAID_CHECK_OK(ep_->AllToAll(host_counts.contiguous(), std::vector<int64_t>(ranks, per), got,
                               std::vector<int64_t>(ranks, per)));
  const int64_t* g = got.data_ptr<int64_t>();
  std::vector<int64_t> start(ranks * per), local(per, 0);  // where (s, l)'s rows arrive
  int64_t at = 0;
  for (int s = 0; s < ranks; ++s) {
    for (int64_t l = 0; l < per; ++l) {
      start[s * per + l] = at;
      at += g[s * per + l];
      recv[s] += g[s * per + l];
      local[l] += g[s * per + l];
    }
  }
  // Regrouped by local expert (each expert's rows from source 0, then 1, ...).
  torch::Tensor order = torch::empty({at}, torch::kLong);
  int64_t* o = order.data_ptr<int64_t>();
  for (int64_t l = 0; l < per; ++l) {
    for (int s = 0; s < ranks; ++s) {
      for (int64_t i = 0; i < g[s * per + l]; ++i) *o++ = start[s * per + l] + i;
    }
  }
  order = order.to(in.device());
  const torch::Tensor received = AllToAllRows(in, *ep_, send, recv);
  const torch::Tensor ys = RunExperts(received.index_select(0, order), local.data());
  // Back in arrival order, then to the sources.
  const torch::Tensor back = torch::zeros_like(ys).index_copy(0, order, ys);
  return AllToAllRows(back, *ep_, recv, send);
}

void AddMoeMetrics(torch::nn::Module& root, std::map<std::string, double>* metrics) {
  std::vector<std::shared_ptr<MoeMlp>> layers;
  for (const auto& m : root.modules()) {
    if (auto moe = std::dynamic_pointer_cast<MoeMlp>(m); moe && moe->last().counts.defined()) {
      layers.push_back(moe);
    }
  }
  if (layers.empty()) return;
  // One transfer for every layer: [aux, z, kept share, cv, max/mean, min/mean] each.
  std::vector<torch::Tensor> rows;
  for (const auto& l : layers) {
    const MoeRouting& r = l->last();
    const torch::Tensor c = r.counts.to(torch::kDouble);
    const torch::Tensor mean = c.mean().clamp_min(1e-12);
    rows.push_back(torch::stack({r.aux.to(torch::kDouble), r.z.to(torch::kDouble),
                                 r.kept.to(torch::kDouble).mean(), c.std(false) / mean,
                                 c.max() / mean, c.min() / mean}));
  }
  const torch::Tensor all = torch::stack(rows).cpu();
  const auto v = all.accessor<double, 2>();
  for (size_t i = 0; i < layers.size(); ++i) {
    const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, layers[i]->total_layers()));
    std::string layer = layers[i]->name();
    if (absl::EndsWith(layer, ".mlp")) layer.resize(layer.size() - 4);
    const int64_t row = static_cast<int64_t>(i);
    (*metrics)["moe_aux/" + layer] += v[row][0];
    (*metrics)["moe_z/" + layer] += v[row][1];
    (*metrics)["moe_load_cv/" + layer] += v[row][3];
    (*metrics)["moe_aux"] += per * v[row][0];
    (*metrics)["moe_z"] += per * v[row][1];
    (*metrics)["moe_dropped"] += per * (1.0 - v[row][2]);
    (*metrics)["moe_load_cv"] += per * v[row][3];
    (*metrics)["moe_load_max"] += per * v[row][4];
    (*metrics)["moe_load_min"] += per * v[row][5];
  }
}

}  // namespace braid

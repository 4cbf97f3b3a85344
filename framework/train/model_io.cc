// Gather / load full weights across TP sizes (see model_io.h).
#include "framework/train/model_io.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/check.h"

namespace braid {

torch::Tensor RepadVocab(const torch::Tensor& t, int64_t rows) {
  if (t.size(0) == rows) return t;
  if (t.size(0) > rows) return t.narrow(0, 0, rows).clone();
  std::vector<int64_t> pad = t.sizes().vec();
  pad[0] = rows - t.size(0);
  return torch::cat({t, torch::zeros(pad, t.options())});
}

torch::Tensor Unshard(const std::vector<torch::Tensor>& shards, TpParam layout) {
  if (layout.axis < 0 || shards.size() == 1) return shards[0];  // callers own their shards
  if (const int64_t tail = layout.replicated_tail; tail > 0) {  // the parts, then rank 0's tail
    const int64_t split = shards[0].size(layout.axis) - tail;
    std::vector<torch::Tensor> parts;
    for (const torch::Tensor& s : shards) parts.push_back(s.narrow(layout.axis, 0, split));
    TpParam rest = layout;
    rest.replicated_tail = 0;
    return torch::cat({Unshard(parts, rest), shards[0].narrow(layout.axis, split, tail)},
                      layout.axis);
  }
  const int tp = static_cast<int>(shards.size());
  const int axis = layout.axis, g = layout.groups;
  torch::Tensor s = torch::stack(shards);  // [tp, ..., g * part, ...]
  std::vector<int64_t> shape = s.sizes().vec();
  int64_t part = shape[axis + 1] / g;
  std::vector<int64_t> split(shape.begin(), shape.begin() + axis + 1);
  split.push_back(g);
  split.push_back(part);
  split.insert(split.end(), shape.begin() + axis + 2, shape.end());
  s = s.reshape(split);  // [tp, ..., g, part, ...]
  // Move tp next to part: [..., g, tp, part, ...]
  std::vector<int64_t> perm;
  for (int d = 1; d <= axis + 1; ++d) perm.push_back(d);  // leading dims and g
  perm.push_back(0);
  for (int64_t d = axis + 2; d < static_cast<int64_t>(split.size()); ++d) perm.push_back(d);
  s = s.permute(perm);
  std::vector<int64_t> full(shards[0].sizes().begin(), shards[0].sizes().end());
  full[axis] = g * tp * part;
  return s.reshape(full).contiguous();
}

torch::Tensor GatherFull(const torch::Tensor& local_in, TpParam layout, Communicator& tp) {
  torch::Tensor local = local_in.detach().contiguous();
  if (layout.axis < 0 || tp.size() == 1) return local.clone();
  std::vector<int64_t> shape = {tp.size()};
  for (int64_t s : local.sizes()) shape.push_back(s);
  torch::Tensor all = torch::empty(shape, local.options());
  BRAID_CHECK_OK(tp.AllGather(local, all));
  return Unshard(all.unbind(0), layout);
}

std::map<std::string, torch::Tensor> GatherFullState(torch::nn::Module& model, Communicator& tp) {
  std::map<std::string, TpParam> layouts = CollectTpParams(model);
  std::map<std::string, torch::Tensor> out;
  torch::NoGradGuard no_grad;
  for (const auto& p : model.named_parameters()) {
    out[p.key()] = GatherFull(p.value(), layouts[p.key()], tp);
  }
  return out;
}

absl::Status LoadFullState(torch::nn::Module& model,
                           const std::map<std::string, torch::Tensor>& full, int tp_rank,
                           int tp_size) {
  std::map<std::string, TpParam> layouts = CollectTpParams(model);
  std::vector<std::string> missing, mismatched;
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    auto it = full.find(p.key());
    if (it == full.end()) {
      missing.push_back(p.key());
      continue;
    }
    const TpParam layout = layouts[p.key()];
    torch::Tensor full_t = it->second.to(p.value().scalar_type());
    if (layout.vocab && full_t.dim() == p.value().dim()) {
      full_t = RepadVocab(full_t, p.value().size(0) * (layout.axis == 0 ? tp_size : 1));
    }
    torch::Tensor slice = ShardOf(full_t, layout, tp_rank, tp_size);
    if (slice.sizes() != p.value().sizes()) {
      mismatched.push_back(absl::StrCat(p.key(), " (file ", c10::str(it->second.sizes()),
                                        " -> shard ", c10::str(slice.sizes()), ", model ",
                                        c10::str(p.value().sizes()), ")"));
      continue;
    }
    p.value().copy_(slice);
  }
  std::vector<std::string> extra;
  auto params = model.named_parameters();
  for (const auto& [name, t] : full)
    if (params.find(name) == nullptr) extra.push_back(name);
  if (missing.empty() && mismatched.empty() && extra.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the weights do not fit this model.",
      missing.empty() ? "" : absl::StrCat(" Missing: ", absl::StrJoin(missing, ", "), "."),
      extra.empty() ? "" : absl::StrCat(" Unexpected: ", absl::StrJoin(extra, ", "), "."),
      mismatched.empty() ? ""
                         : absl::StrCat(" Wrong shape: ", absl::StrJoin(mismatched, "; "), "."),
      " HINT: the config (model section) must match the one the weights were trained with."));
}

}  // namespace braid

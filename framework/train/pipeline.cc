// One step of a pipeline stage (see pipeline.h).
#include "framework/train/pipeline.h"

#include <set>

#include <tuple>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/check.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/parallel/autocast.h"

namespace braid {

StageTensors TrainTask::StageForward(int, const Batch&, const StageTensors&, TpRng&,
                                     std::map<std::string, double>*) {
  BRAID_CHECK(false) << "this task has no pipeline stages";
  return {};
}

StageTensors TrainTask::ActivationLike(const Batch&, int64_t) const {
  BRAID_CHECK(false) << "this task has no pipeline stages";
  return {};
}

namespace {

struct Pending {
  StageTensors buffers;
  WorkHandle work;
};

// Every tensor of `tensors` to (or from) one peer.
std::vector<int> Peers(const StageTensors& tensors, int peer) {
  return std::vector<int>(tensors.size(), peer);
}

}  // namespace

absl::StatusOr<PipelineStepResult> RunPipelineStep(TrainTask& task,
                                                   const std::vector<PipeAction>& schedule,
                                                   const std::function<Batch(int)>& batch_of,
                                                   Communicator& pp, TpRng& rng,
                                                   std::map<std::string, double>* metrics,
                                                   const PipelineStepOptions& options) {
  const StagePlan& plan = *task.stage();
  const int P = plan.pp_size, r = plan.pp_rank;
  const int64_t num_virtual = static_cast<int64_t>(P) * plan.virtual_size;
  const int prev = (r - 1 + P) % P, next = (r + 1) % P;
  auto vstage = [&](int chunk) { return static_cast<int64_t>(chunk) * P + r; };
  // Forward messages cross boundary b (virtual stage b to b + 1) with direction 0, gradients
  // with direction 1.
  auto tag = [&](int micro, int64_t boundary, int direction) {
    return static_cast<int>(((micro * num_virtual + boundary) * 2 + direction) % (1 << 30));
  };

  std::map<int, Batch> batches;
  auto batch = [&](int micro) -> const Batch& {
    auto it = batches.find(micro);
    if (it == batches.end()) it = batches.emplace(micro, batch_of(micro)).first;
    return it->second;
  };
  std::map<std::pair<int, int>, Pending> inbox[2];  // [kind] by (micro, chunk)
  auto post_receive = [&](const PipeAction& a) -> absl::Status {
    const int64_t s = vstage(a.chunk);
    const bool forward = a.kind == PipeAction::kForward;
    if ((forward && s == 0) || (!forward && s == num_virtual - 1)) return absl::OkStatus();
    auto key = std::make_pair(a.micro, a.chunk);
    if (inbox[a.kind].count(key) != 0) return absl::OkStatus();
    Pending p;
    p.buffers = task.ActivationLike(batch(a.micro), forward ? s : s + 1);
    BRAID_ASSIGN_OR_RETURN(
        p.work, pp.SendRecvAsync({}, {}, p.buffers, Peers(p.buffers, forward ? prev : next),
                                 forward ? tag(a.micro, s - 1, 0) : tag(a.micro, s, 1)));
    inbox[a.kind].emplace(key, std::move(p));
    return absl::OkStatus();
  };
  auto take_received = [&](const PipeAction& a,
                           PipelineStepResult& result) -> absl::StatusOr<StageTensors> {
    auto it = inbox[a.kind].find({a.micro, a.chunk});
    BRAID_CHECK(it != inbox[a.kind].end());
    const double start = SteadySeconds();
    BRAID_RETURN_IF_ERROR(it->second.work->Wait());
    result.wait_seconds += SteadySeconds() - start;
    StageTensors t = std::move(it->second.buffers);
    inbox[a.kind].erase(it);
    return t;
  };

  // The dtypes entering each virtual stage, asked of the task once per step (not an allocation
  // per send).
  std::map<int64_t, std::vector<c10::ScalarType>> wire_types;
  auto wire_type = [&](const Batch& b, int64_t stage) -> const std::vector<c10::ScalarType>& {
    auto it = wire_types.find(stage);
    if (it == wire_types.end()) {
      std::vector<c10::ScalarType> types;
      for (const torch::Tensor& t : task.ActivationLike(b, stage)) types.push_back(t.scalar_type());
      it = wire_types.emplace(stage, std::move(types)).first;
    }
    return it->second;
  };
  // `tensors` as virtual stage `stage` receives them: its dtypes, contiguous.
  auto to_wire = [&](const Batch& b, int64_t stage, StageTensors tensors) {
    const std::vector<c10::ScalarType>& types = wire_type(b, stage);
    BRAID_CHECK(types.size() == tensors.size())
        << "virtual stage " << stage << " takes " << types.size() << " tensors, but "
        << tensors.size() << " were made for it";
    for (size_t k = 0; k < tensors.size(); ++k) tensors[k] = tensors[k].to(types[k]).contiguous();
    return tensors;
  };

  size_t last_backward = schedule.size();
  for (size_t i = 0; i < schedule.size(); ++i)
    if (schedule[i].kind == PipeAction::kBackward) last_backward = i;

  struct Saved {
    StageTensors input, output;
  };
  std::map<std::pair<int, int>, Saved> saved;
  std::vector<WorkHandle> sends;
  PipelineStepResult result;
  if (!schedule.empty()) BRAID_RETURN_IF_ERROR(post_receive(schedule[0]));
  for (size_t i = 0; i < schedule.size(); ++i) {
    const PipeAction& a = schedule[i];
    const int64_t s = vstage(a.chunk);
    // The next action's input travels while this one computes.
    if (i + 1 < schedule.size()) BRAID_RETURN_IF_ERROR(post_receive(schedule[i + 1]));
    const Batch& b = batch(a.micro);
    if (a.kind == PipeAction::kForward) {
      StageTensors input;
      if (s > 0) {
        BRAID_ASSIGN_OR_RETURN(input, take_received(a, result));
        if (options.backward)
          for (torch::Tensor& t : input)
            if (t.is_floating_point()) t.requires_grad_(true);
      }
      StageTensors output;
      {
        torch::AutoGradMode grad_mode(options.backward);
        AutocastScope amp(b.rows.device().type(), options.bf16);
        output = task.StageForward(a.chunk, b, input, rng, metrics);
      }
      if (s == num_virtual - 1) {
        BRAID_CHECK(output.size() == 1) << "the last virtual stage returns the loss alone";
        result.loss_sum += output[0].item<double>();
        ++result.losses;
      } else {
        StageTensors wire;
        for (const torch::Tensor& t : output) wire.push_back(t.detach());
        wire = to_wire(b, s + 1, std::move(wire));
        BRAID_ASSIGN_OR_RETURN(
            WorkHandle w, pp.SendRecvAsync(wire, Peers(wire, next), {}, {}, tag(a.micro, s, 0)));
        sends.push_back(std::move(w));
      }
      if (options.backward) saved[{a.micro, a.chunk}] = Saved{input, output};
      continue;
    }
    // Backward.
    if (i == last_backward && options.before_last_backward) options.before_last_backward();
    auto it = saved.find({a.micro, a.chunk});
    BRAID_CHECK(it != saved.end()) << "backward before forward in the pipeline schedule";
    Saved stash = std::move(it->second);
    saved.erase(it);
    if (s == num_virtual - 1) {
      (stash.output[0] * options.loss_scale).backward();
    } else {
      BRAID_ASSIGN_OR_RETURN(StageTensors grads, take_received(a, result));
      // The outputs that depend on parameters or inputs (an integer or constant one has no
      // gradient to pass on).
      StageTensors outputs, output_grads;
      for (size_t k = 0; k < stash.output.size(); ++k) {
        if (!stash.output[k].requires_grad()) continue;
        outputs.push_back(stash.output[k]);
        output_grads.push_back(grads[k].to(stash.output[k].scalar_type()));
      }
      if (!outputs.empty()) torch::autograd::backward(outputs, output_grads);
    }
    if (s > 0) {
      StageTensors g;
      for (const torch::Tensor& in : stash.input) {
        torch::Tensor grad = in.grad();
        g.push_back(grad.defined() ? grad : torch::zeros_like(in));
      }
      g = to_wire(b, s, std::move(g));
      BRAID_ASSIGN_OR_RETURN(WorkHandle w,
                             pp.SendRecvAsync(g, Peers(g, prev), {}, {}, tag(a.micro, s - 1, 1)));
      sends.push_back(std::move(w));
    }
  }
  for (WorkHandle& w : sends) BRAID_RETURN_IF_ERROR(w->Wait());
  return result;
}

absl::Status ShareStageMetrics(Communicator& pp, std::map<std::string, double>* metrics) {
  // Every stage's keys (the last stage's objective metrics; any stage's per-layer ones, e.g. its
  // MoE layers'), each summed over the stages that have it.
  std::vector<std::string> mine;
  for (const auto& [k, v] : *metrics) mine.push_back(k);
  BRAID_ASSIGN_OR_RETURN(std::vector<std::string> all,
                         AllGatherStrings(pp, absl::StrJoin(mine, "\n")));
  std::set<std::string> union_keys;
  for (const std::string& s : all) {
    if (s.empty()) continue;
    for (absl::string_view k : absl::StrSplit(s, '\n')) union_keys.insert(std::string(k));
  }
  const std::vector<std::string> keys(union_keys.begin(), union_keys.end());
  torch::Tensor values = torch::zeros({static_cast<int64_t>(keys.size()) + 1}, torch::kDouble);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = metrics->find(keys[i]);
    if (it != metrics->end()) values[static_cast<int64_t>(i)] = it->second;
  }
  BRAID_RETURN_IF_ERROR(pp.AllReduce(values, ReduceOp::kSum));
  metrics->clear();
  for (size_t i = 0; i < keys.size(); ++i) {
    (*metrics)[keys[i]] = values[static_cast<int64_t>(i)].item<double>();
  }
  return absl::OkStatus();
}

}  // namespace braid

// One step of a pipeline stage (see pipeline.h).
#include "framework/train/pipeline.h"

#include <tuple>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/parallel/autocast.h"

namespace braid {

torch::Tensor TrainTask::StageForward(int, const Batch&, const torch::Tensor&, TpRng&,
                                      std::map<std::string, double>*) {
  BRAID_CHECK(false) << "this task has no pipeline stages";
  return {};
}

torch::Tensor TrainTask::ActivationLike(const Batch&, int64_t) const {
  BRAID_CHECK(false) << "this task has no pipeline stages";
  return {};
}

namespace {

struct Pending {
  torch::Tensor buffer;
  WorkHandle work;
};

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
    p.buffer = task.ActivationLike(batch(a.micro), forward ? s : s + 1);
    BRAID_ASSIGN_OR_RETURN(p.work,
                           pp.SendRecvAsync({}, {}, {p.buffer}, {forward ? prev : next},
                                            forward ? tag(a.micro, s - 1, 0) : tag(a.micro, s, 1)));
    inbox[a.kind].emplace(key, std::move(p));
    return absl::OkStatus();
  };
  auto take_received = [&](const PipeAction& a,
                           PipelineStepResult& result) -> absl::StatusOr<torch::Tensor> {
    auto it = inbox[a.kind].find({a.micro, a.chunk});
    BRAID_CHECK(it != inbox[a.kind].end());
    const double start = SteadySeconds();
    BRAID_RETURN_IF_ERROR(it->second.work->Wait());
    result.wait_seconds += SteadySeconds() - start;
    torch::Tensor t = std::move(it->second.buffer);
    inbox[a.kind].erase(it);
    return t;
  };

  // The dtype entering each virtual stage, asked of the task once per step (not an allocation per
  // send).
  std::map<int64_t, c10::ScalarType> wire_types;
  auto wire_type = [&](const Batch& b, int64_t stage) {
    auto it = wire_types.find(stage);
    if (it == wire_types.end()) {
      it = wire_types.emplace(stage, task.ActivationLike(b, stage).scalar_type()).first;
    }
    return it->second;
  };

  size_t last_backward = schedule.size();
  for (size_t i = 0; i < schedule.size(); ++i)
    if (schedule[i].kind == PipeAction::kBackward) last_backward = i;

  struct Saved {
    torch::Tensor input, output;
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
      torch::Tensor input;
      if (s > 0) {
        BRAID_ASSIGN_OR_RETURN(input, take_received(a, result));
        if (options.backward) input.requires_grad_(true);
      }
      torch::Tensor output;
      {
        torch::AutoGradMode grad_mode(options.backward);
        AutocastScope amp(b.rows.device().type(), options.bf16);
        output = task.StageForward(a.chunk, b, input, rng, metrics);
      }
      if (s == num_virtual - 1) {
        result.loss_sum += output.item<double>();
        ++result.losses;
      } else {
        torch::Tensor wire = output.detach().to(wire_type(b, s + 1));
        BRAID_ASSIGN_OR_RETURN(WorkHandle w, pp.SendRecvAsync({wire.contiguous()}, {next}, {}, {},
                                                              tag(a.micro, s, 0)));
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
      (stash.output * options.loss_scale).backward();
    } else {
      BRAID_ASSIGN_OR_RETURN(torch::Tensor grad, take_received(a, result));
      torch::autograd::backward({stash.output}, {grad.to(stash.output.scalar_type())});
    }
    if (s > 0) {
      torch::Tensor g = stash.input.grad();
      if (!g.defined()) g = torch::zeros_like(stash.input);
      g = g.to(wire_type(b, s)).contiguous();
      BRAID_ASSIGN_OR_RETURN(WorkHandle w,
                             pp.SendRecvAsync({g}, {prev}, {}, {}, tag(a.micro, s - 1, 1)));
      sends.push_back(std::move(w));
    }
  }
  for (WorkHandle& w : sends) BRAID_RETURN_IF_ERROR(w->Wait());
  return result;
}

}  // namespace braid

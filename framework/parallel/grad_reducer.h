// Data-parallel gradient reduction overlapped with backward (what PyTorch DDP's reducer does).
// Gradients live in flat buckets (about `bucket_mb` each, parameters in reverse order, the order
// backward produces them): every parameter's .grad is a view into its bucket, so accumulation
// across micro-batches writes straight into the bucket. During the backward of the last
// micro-batch a post-hook on each parameter's gradient accumulator counts it ready; a bucket
// whose parameters are all ready is all-reduced (average over DP) asynchronously while backward
// goes on. Buckets are launched strictly in bucket order, the same on every rank. Finish() waits
// for all of them. Nothing is reduced on the other micro-batches.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "framework/dist/communicator.h"

namespace braid {

class GradReducer {
 public:
  GradReducer(std::vector<torch::Tensor> params, std::shared_ptr<Communicator> dp,
              double bucket_mb);
  ~GradReducer();

  // Call before the backward of the last micro-batch of a step (enables the hooks).
  void PrepareForLastBackward();
  // After that backward: launches any bucket not yet launched (parameters without gradient),
  // waits for every reduction. Returns the seconds spent waiting.
  double Finish();
  // Zeroes every bucket (all gradients) for the next step.
  void ZeroGrad();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    torch::Tensor flat;
    int pending = 0;
    bool launched = false;
    WorkHandle work;
  };
  void MarkReady(size_t param_index);
  void LaunchReadyInOrder();

  std::vector<torch::Tensor> params_;
  std::shared_ptr<Communicator> dp_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;
  std::vector<bool> ready_;
  size_t next_to_launch_ = 0;
  bool armed_ = false;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
};

}  // namespace braid

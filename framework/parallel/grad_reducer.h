// Data-parallel gradient reduction overlapped with backward (what PyTorch DDP's reducer does).
// Gradients live in flat buckets (about `bucket_mb` each, parameters in reverse order, the order
// backward produces them): every parameter's .grad is a view into its bucket, so accumulation
// across micro-batches writes straight into the bucket. During the backward of the last
// micro-batch a post-hook on each parameter's gradient accumulator counts it ready; a bucket
// whose parameters are all ready is all-reduced (average over DP) asynchronously while backward
// goes on. Buckets are launched strictly in bucket order, the same on every rank. Finish() waits
// for all of them. Nothing is reduced on the other micro-batches.
//
// Sharded (the distributed optimizer, ZeRO-1; `shard` with DP > 1): each bucket is padded to a
// multiple of the DP size and split into DP equal shards; it is reduce-scattered instead (DP rank
// r receives the average of shard r), in the same order and overlap. In place: the reduced shard
// overwrites rank r's own part of the bucket, and the rest of the bucket (the other shards of the
// parameters' .grad views) then holds partial sums, not gradients: after Finish() only the pieces'
// `grad` are meaningful. Pieces() cuts this rank's
// shards at parameter boundaries: a piece is a range of one parameter with its reduced gradient,
// what the optimizer updates. GatherPieces() all-gathers per-piece values (the updated
// parameters, or optimizer moments for a checkpoint) into whole per-parameter tensors, bucket by
// bucket, two buckets in flight at a time (the next gather runs while the last is unpacked).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "framework/dist/communicator.h"

namespace braid {

class GradReducer {
 public:
  // `only` (empty: all): the parameters this reducer takes (the others, like parameters without
  // gradient, stay out of its buckets). `scale`: a factor on the reduced gradients, applied in
  // Finish() even when the group is one rank (expert parallelism's 1/EP: framework/train/step.h).
  GradReducer(std::vector<torch::Tensor> params, std::shared_ptr<Communicator> dp, double bucket_mb,
              bool shard = false, std::vector<bool> only = {}, double scale = 1.0);
  ~GradReducer();

  // Call before the backward of the last micro-batch of a step (enables the hooks).
  void PrepareForLastBackward();
  // Parameter `param_index`'s readiness is not counted by the hooks: its bucket (and those after
  // it) wait for Finish(). For a gradient that must be changed between backward and the DP
  // reduction (pipeline parallelism's tied embedding copies, summed over the embedding group).
  void Hold(size_t param_index);
  // After that backward: launches any bucket not yet launched (parameters without gradient),
  // waits for every reduction. Returns the seconds spent waiting.
  double Finish();
  // Zeroes every bucket (all gradients) for the next step.
  void ZeroGrad();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  bool sharded() const { return shard_; }

  // Sharded: this rank's pieces, in bucket order. `param` indexes the constructor's parameters;
  // [offset, offset + length) is the range of its flattened elements; `grad` views the reduced
  // shard (valid after Finish()).
  struct Piece {
    size_t param = 0;
    int64_t offset = 0, length = 0;
    torch::Tensor grad;
    size_t bucket = 0;
    int64_t at = 0;  // where it starts in this rank's shard of the bucket
  };
  const std::vector<Piece>& Pieces() const { return pieces_; }
  // DP rank `dp_rank`'s pieces (without `grad`): the same cut for any rank, computed from the
  // bucket layout, which every rank of the group shares (a checkpoint lists them all).
  std::vector<Piece> PiecesOf(int dp_rank) const;
  // Sharded, collective over DP: `values[j]` (piece j's elements, `length` of them) from every
  // rank, written into `whole[param]` (each the parameter's shape; parameters without a bucket
  // are left alone).
  void GatherPieces(const std::vector<torch::Tensor>& values, std::vector<torch::Tensor>& whole);

 private:
  struct Bucket {
    torch::Tensor flat;   // padded to a multiple of the DP size when sharded
    torch::Tensor shard;  // sharded: this rank's part of `flat` (a view), reduced in place
    std::vector<size_t> members;
    std::vector<int64_t> offsets;  // of each member in `flat`
    int pending = 0;
    bool launched = false;
    WorkHandle work;
  };
  void MarkReady(size_t param_index);
  void LaunchReadyInOrder();

  std::vector<torch::Tensor> params_;
  std::shared_ptr<Communicator> dp_;
  bool shard_ = false;
  double scale_ = 1.0;
  std::vector<Piece> pieces_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;
  std::vector<bool> ready_;
  std::vector<bool> held_;
  size_t next_to_launch_ = 0;
  bool armed_ = false;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
};

}  // namespace braid

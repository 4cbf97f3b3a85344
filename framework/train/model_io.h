// Whole-model weights independent of the TP size: gather every parameter's shards into the full
// tensor (TpParam says how each is split), and load full tensors back into a sharded module of
// any TP size. The trainer saves the final weights this way; generate and the tests load them.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/status.h"
#include "framework/dist/communicator.h"
#include "framework/parallel/layers.h"

namespace braid {

// A vocabulary-split tensor (TpParam::vocab: axis 0 is the padded vocabulary) fitted to `rows`
// rows: the padding past the real vocabulary is zero, so it is cut or zero-extended. The one
// place vocabulary padding is redone (another TP size pads to another multiple).
torch::Tensor RepadVocab(const torch::Tensor& t, int64_t rows);

// The full tensor from all TP shards, in rank order (inverse of ShardOf).
torch::Tensor Unshard(const std::vector<torch::Tensor>& shards, TpParam layout);

// The full tensor of one TP-sharded tensor (collective over tp; a copy when replicated).
torch::Tensor GatherFull(const torch::Tensor& local, TpParam layout, Communicator& tp);

// Full tensors of every parameter of `model`, gathered over `tp` (collective over tp).
std::map<std::string, torch::Tensor> GatherFullState(torch::nn::Module& model, Communicator& tp);

// Copies this rank's slice of each full tensor into `model`. Every parameter must be present with
// the full shape this TP size implies (vocabulary-split ones are re-padded first); extra or
// missing names are errors that list them.
absl::Status LoadFullState(torch::nn::Module& model,
                           const std::map<std::string, torch::Tensor>& full, int tp_rank,
                           int tp_size);

}  // namespace braid

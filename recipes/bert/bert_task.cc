// The BERT objective (see bert_task.h).
#include "recipes/bert/bert_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/bert/bert_batch.h"

namespace braid {

torch::Tensor BertTask::Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) {
  const BertBatch b = BertBatch::FromRows(batch.rows, seq_);
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor& sop = b.sop;
  BertOutput out = model_->Forward(b.ids, b.types, b.padding, rng);
  torch::Tensor logits = out.mlm_logits.reshape({-1, out.mlm_logits.size(-1)});
  torch::Tensor masked = labels.ne(-100).nonzero().squeeze(1);
  const double n_masked = std::max<double>(1.0, static_cast<double>(masked.numel()));
  if (metrics != nullptr && masked.numel() > 0) {
    torch::NoGradGuard no_grad;  // accuracy from the full logits of the masked rows only
    torch::Tensor full = AllGatherLastDim(logits.detach().index_select(0, masked), *tp_)
                             .narrow(1, 0, model_->config().vocab_size);
    double acc =
        full.argmax(1).eq(labels.index_select(0, masked)).to(torch::kDouble).mean().item<double>();
    (*metrics)["mlm_acc"] += acc;
  }
  torch::Tensor mlm =
      VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n_masked;
  torch::Tensor loss = mlm;
  if (metrics != nullptr) (*metrics)["mlm_loss"] += mlm.item<double>();
  if (out.binary_logits.defined()) {
    torch::Tensor sop_loss = torch::nn::functional::cross_entropy(out.binary_logits, sop);
    loss = loss + sop_loss;
    if (metrics != nullptr) {
      (*metrics)["sop_loss"] += sop_loss.item<double>();
      (*metrics)["sop_acc"] +=
          out.binary_logits.argmax(1).eq(sop).to(torch::kDouble).mean().item<double>();
    }
  }
  return loss;
}

}  // namespace braid

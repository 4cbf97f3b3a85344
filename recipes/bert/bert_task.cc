// The BERT objective (see bert_task.h).
#include "recipes/bert/bert_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/bert/bert_batch.h"

namespace braid {

torch::Tensor BertTask::Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) {
  const BertBatch b = BertBatch::FromRows(batch.rows, seq_);
  return Objective(model_->Forward(b.ids, b.types, b.padding, rng, /*logits=*/chunk_ == 0), b,
                   metrics);
}

StageTensors BertTask::StageForward(int chunk, const Batch& batch, const StageTensors& input,
                                    TpRng& rng, std::map<std::string, double>* metrics) {
  const BertBatch b = BertBatch::FromRows(batch.rows, seq_);
  torch::Tensor x = model_->ChunkForward(chunk, b.ids, b.types, b.padding,
                                         input.empty() ? torch::Tensor() : input[0], rng);
  if (!model_->stage().chunks[chunk].output) return {x};
  return {Objective(model_->Heads(x, /*logits=*/chunk_ == 0), b, metrics)};
}

StageTensors BertTask::ActivationLike(const Batch& batch, int64_t) const {
  const torch::Tensor any = model_->parameters().front();
  return {torch::empty({batch.rows.size(0), seq_, model_->config().block.hidden},
                       any.options().requires_grad(false))};
}

torch::Tensor BertTask::Objective(const BertOutput& out, const BertBatch& b,
                                  std::map<std::string, double>* metrics) {
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor& sop = b.sop;
  torch::Tensor masked = labels.ne(-100).nonzero().squeeze(1);
  const double n_masked = std::max<double>(1.0, static_cast<double>(masked.numel()));
  torch::Tensor mlm;
  if (chunk_ > 0) {
    // The masked rows alone: their mean loss is the objective (the others are ignored anyway).
    const torch::Tensor& hidden = out.mlm_hidden;
    torch::Tensor h = CopyToTp(hidden.reshape({-1, hidden.size(-1)}).index_select(0, masked), *tp_);
    const torch::Tensor targets = labels.index_select(0, masked);
    const torch::Tensor &w = model_->output_weight(), &bias = model_->output_bias();
    if (metrics != nullptr && masked.numel() > 0) {
      (*metrics)["mlm_acc"] += ChunkedVocabParallelArgmax(h, w, bias, *tp_, model_->shard(), chunk_)
                                   .eq(targets)
                                   .to(torch::kDouble)
                                   .mean()
                                   .item<double>();
    }
    mlm = masked.numel() > 0 ? ChunkedVocabParallelLoss(h, w, targets, *tp_, model_->shard(),
                                                        chunk_, -100, 0.0, bias)
                             : hidden.sum() * 0.0;  // nothing masked: 0, as the whole logits give
  } else {
    torch::Tensor logits = out.mlm_logits.reshape({-1, out.mlm_logits.size(-1)});
    if (metrics != nullptr && masked.numel() > 0) {
      torch::NoGradGuard no_grad;  // accuracy from the full logits of the masked rows only
      torch::Tensor full = AllGatherLastDim(logits.detach().index_select(0, masked), *tp_)
                               .narrow(1, 0, model_->config().vocab_size);
      double acc = full.argmax(1)
                       .eq(labels.index_select(0, masked))
                       .to(torch::kDouble)
                       .mean()
                       .item<double>();
      (*metrics)["mlm_acc"] += acc;
    }
    mlm = VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n_masked;
  }
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

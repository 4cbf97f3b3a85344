// The encoder-decoder base of the T5, BART and UL2 families: an encoder of model.num_layers
// layers over model.seq_length positions, a decoder of DerivedSizes::decoder_num_layers layers
// over the family's DecoderLength() positions with cross-attention to the encoder, and the
// parameter-count skeleton of such a model. A family says only what differs: its decoder length,
// its per-layer and embedding parameters, its data and model.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/data/splits.h"
#include "recipes/family.h"
#include "recipes/seq2seq/seq2seq_batch.h"

namespace braid {

class Seq2SeqFamily : public Family {
 public:
  // model.num_layers + the decoder's layers: a pipeline splits them in that order (the encoder's
  // end and the decoder's start may share a stage; docs/pipeline.md).
  int64_t LayerCount(const Config& c) const override;
  // The encoder over model.seq_length; the decoder over DecoderLength(c), reading the encoder.
  std::vector<Stack> Stacks(const Config& c) const override;
  int64_t OutputPositions(const Config& c) const override { return DecoderLength(c); }
  int64_t DecoderLength(const Config& c) const override = 0;

 protected:
  // The parameters of a model whose layers hold, besides their matrices, the given vectors:
  // an encoder layer self-attention, an MLP and `encoder_norms` norms; a decoder layer
  // self- and cross-attention, an MLP and `decoder_norms` norms; plus `extra` (position tables,
  // final norms, output biases). Attention is hidden x heads x head size four times (q, k, v,
  // out) with `attention_bias` bias entries; the MLP hidden x FFN twice (three times gated) with
  // `mlp_bias`; a norm `norm_width` entries; the vocabulary embedding once, twice when untied.
  struct LayerShape {
    int64_t attention_bias = 0, mlp_bias = 0, norm_width = 0;
    int64_t encoder_norms = 2, decoder_norms = 3;
  };
  static int64_t Seq2SeqParameters(const Config& c, const DerivedSizes& s, const LayerShape& l,
                                   int64_t extra);
};

// The training and validation splits of a family whose samples are made of raw chunks of
// `raw_length` tokens (T5, UL2): each dataset's part of each split is OpenRawChunks (GPT samples of
// documents concatenated, the index cached), turned into samples by `make(raw, seed)`, the seed the
// part's own (from the config's seed, the dataset and the split).
using ChunkSamples = std::function<std::unique_ptr<SampleSource>(
    std::shared_ptr<const SampleSource> raw, uint64_t seed)>;
absl::StatusOr<DataSplits> BuildChunkSplits(const RunContext& ctx, int64_t raw_length,
                                            const ChunkSamples& make);

// The accuracy of always guessing the most frequent target token over the first 2000 samples
// of `train` (rows `r`): the target_acc to beat, and with the noised field the masked_acc to
// beat; a line for the start of the log.
std::string MostFrequentTargetNote(const SampleSource& train, const Seq2SeqRow& r, int64_t vocab,
                                   const Tokenizer& tok);

}  // namespace braid

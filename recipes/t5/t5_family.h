// The T5 family (encoder-decoder, span corruption; T5 v1.1 and the original T5): recipe `t5`.
// The model is the shared T5 model (recipes/seq2seq/t5_model.h); this folder holds the objective's
// data.
#pragma once
#include "recipes/family.h"
#include "recipes/seq2seq/span_corruption.h"

namespace braid {

const Family& T5Family();

// The span arithmetic of a config: model.seq_length (the encoder's) under data.noise_density
// and data.mean_noise_span_length.
SpanLengths T5LengthsOf(const Config& c);
// The decoder's length: model.decoder_seq_length, or the targets' length when 0.
int64_t T5DecoderLength(const Config& c);

}  // namespace braid

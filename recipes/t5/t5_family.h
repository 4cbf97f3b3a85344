// The T5 family (encoder-decoder, span corruption; T5 v1.1 and the original T5): recipe `t5`.
#pragma once
#include "recipes/family.h"
#include "recipes/t5/span_corruption.h"

namespace braid {

const Family& T5Family();
// Its Hugging Face layout: T5ForConditionalGeneration (t5_hf.cc).
const HfLayout& T5HfLayout();

// The span arithmetic of a config: model.seq_length (the encoder's) under data.noise_density
// and data.mean_noise_span_length.
SpanLengths T5LengthsOf(const Config& c);
// The decoder's length: model.decoder_seq_length, or the targets' length when 0.
int64_t T5DecoderLength(const Config& c);

}  // namespace braid

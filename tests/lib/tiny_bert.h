// A tiny BERT config shared by the multi-rank model tests: 2 layers, width 32, 4 heads, MLP 64
// (GELU), 16 positions, a vocabulary of 250 padded to 256.
#pragma once
#include "framework/models/bert.h"

namespace braid::testing {

inline BertConfig TinyBertConfig() {
  BertConfig c;
  c.layers = 2;
  c.max_positions = 16;
  c.vocab_size = 250;
  c.padded_vocab = 256;
  c.block.hidden = 32;
  c.block.heads = 4;
  c.block.ffn = 64;
  c.block.activation = Activation::kGelu;
  c.block.eps = 1e-12;
  return c;
}

}  // namespace braid::testing

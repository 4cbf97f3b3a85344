// The tiny GPT the model and device tests build: 2 layers, 4 heads, vocabulary 250 padded to 256.
#pragma once
#include "framework/models/gpt.h"

namespace braid::testing {

inline GptConfig TinyGptConfig(int64_t hidden = 32, int64_t ffn = 64, int64_t positions = 32) {
  GptConfig c;
  c.layers = 2;
  c.max_positions = positions;
  c.vocab_size = 250;
  c.padded_vocab = 256;
  c.block.hidden = hidden;
  c.block.heads = 4;
  c.block.ffn = ffn;
  return c;
}

// A tiny LLaMA: RoPE, `groups` key/value groups, SwiGLU, RMSNorm, no biases, untied output.
inline GptConfig TinyLlamaConfig(int64_t heads, int64_t groups) {
  GptConfig c = TinyGptConfig(48, 80, 32);
  c.block.heads = heads;
  c.block.kv_groups = groups;
  c.block.rope_theta = 10000;
  c.block.activation = Activation::kSwiglu;
  c.block.norm = NormType::kRmsNorm;
  c.block.bias = false;
  c.position = Position::kRope;
  c.tie_embeddings = false;
  return c;
}

}  // namespace braid::testing

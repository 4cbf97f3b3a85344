// Training FLOPs per sample, from each layer's own dimensions, against closed forms:
//  - GPT with a 4h MLP: Megatron's 72 s L h^2 (1 + s/(6h) + V/(12 L h)) per sample;
//  - a gated MLP (geglu) adds its gate projection: 6 L s h f more;
//  - an untied output layer costs what the tied one does (the same projection);
//  - LLaMA-style: grouped keys and values project to groups x head_dim, SwiGLU adds its gate;
//  - BERT: the same layers plus the MLM transform (6 s h^2) and pooler and binary head on [CLS];
//  - T5: written out term by term for an encoder of s positions and a decoder of t, with heads of
//    d_kv (attention width a = heads x d_kv != h) and a gated FFN.
#include <gtest/gtest.h>

#include "framework/dist/communicator.h"
#include "framework/models/bert.h"
#include "framework/models/gpt.h"
#include "framework/models/t5.h"

namespace braid {
namespace {

constexpr int64_t kL = 3, kH = 64, kS = 48, kV = 500;

GptConfig Gpt(Activation act, int64_t ffn, bool tied = true) {
  GptConfig g;
  g.layers = kL;
  g.max_positions = kS;
  g.vocab_size = kV;
  g.padded_vocab = 512;
  g.tie_embeddings = tied;
  g.block.hidden = kH;
  g.block.heads = 4;
  g.block.ffn = ffn;
  g.block.activation = act;
  return g;
}

double Megatron(double s, double l, double h, double v) {
  return 72.0 * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h));
}

TEST(Flops, GptEqualsMegatronsFormula) {
  GptModel m(TpEnv{LocalCommunicator("tp"), 1}, Gpt(Activation::kGeluTanh, 4 * kH));
  EXPECT_NEAR(m.FlopsPerSample(kS), Megatron(kS, kL, kH, kV), 1e-9 * Megatron(kS, kL, kH, kV));
  GptModel untied(TpEnv{LocalCommunicator("tp"), 1}, Gpt(Activation::kGeluTanh, 4 * kH, false));
  EXPECT_DOUBLE_EQ(untied.FlopsPerSample(kS), m.FlopsPerSample(kS));
}

TEST(Flops, GatedMlpCountsItsGate) {
  const int64_t f = 96;
  GptModel plain(TpEnv{LocalCommunicator("tp"), 1}, Gpt(Activation::kGelu, f));
  GptModel gated(TpEnv{LocalCommunicator("tp"), 1}, Gpt(Activation::kGeglu, f));
  EXPECT_NEAR(gated.FlopsPerSample(kS) - plain.FlopsPerSample(kS), 6.0 * kL * kS * kH * f, 1.0);
}

TEST(Flops, LlamaCountsGroupedKeysAndSwiglu) {
  // 4 heads of 16 in 2 key/value groups: k and v are 32 wide; SwiGLU's gate; untied output.
  const double s = kS, h = kH, q = kH, kv = 32, f = 96, v = kV;
  GptConfig g = Gpt(Activation::kSwiglu, 96, false);
  g.block.kv_groups = 2;
  g.block.rope_theta = 10000;
  g.block.bias = false;
  g.position = Position::kRope;
  GptModel m(TpEnv{LocalCommunicator("tp"), 1}, g);
  const double layer = 2 * s * h * (q + 2 * kv) + 2 * s * q * h  // q, k, v, out
                       + 2 * (2 * s * s * q)                     // scores, context
                       + 2 * s * h * (2 * f) + 2 * s * f * h;    // gate | up, down
  EXPECT_NEAR(m.FlopsPerSample(kS), 3 * (kL * layer + 2 * s * h * v), 1.0);
}

TEST(Flops, BertAddsItsHeads) {
  BertConfig b;
  b.layers = kL;
  b.max_positions = kS;
  b.vocab_size = kV;
  b.padded_vocab = 512;
  b.block.hidden = kH;
  b.block.heads = 4;
  b.block.ffn = 4 * kH;
  b.block.activation = Activation::kGelu;
  BertModel m(TpEnv{LocalCommunicator("tp"), 1}, b);
  const double heads = 6.0 * kS * kH * kH + 6.0 * kH * kH + 6.0 * kH * 2;
  EXPECT_NEAR(m.FlopsPerSample(kS), Megatron(kS, kL, kH, kV) + heads, 1.0);
}

TEST(Flops, T5CountsEncoderDecoderAndCrossAttention) {
  T5Config c;
  c.encoder_layers = 3;
  c.decoder_layers = 2;
  c.vocab_size = kV;
  c.padded_vocab = 512;
  c.block.hidden = kH;
  c.block.heads = 4;
  c.block.head_dim = 24;  // a = 96
  c.block.ffn = 80;
  c.block.activation = Activation::kGegluTanh;
  c.block.norm = NormType::kRmsNorm;
  T5Model m(TpEnv{LocalCommunicator("tp"), 1}, c);
  const double h = kH, a = 96, f = 80, s = 40, t = 12, v = kV;
  // Forward, 2 FLOPs a multiply-add. Encoder layer: q, k, v (3 s h a), scores and context
  // (2 s s a), output (s a h), gate + up + down (3 s h f).
  const double enc = 2 * (3 * s * h * a + 2 * s * s * a + s * a * h + 3 * s * h * f);
  // Decoder layer: self-attention over t, cross-attention (q from t, k and v from the s encoder
  // positions, scores and context t x s), the FFN over t.
  const double dec = 2 * (3 * t * h * a + 2 * t * t * a + t * a * h +              // self
                          t * h * a + 2 * s * h * a + 2 * t * s * a + t * a * h +  // cross
                          3 * t * h * f);
  const double out = 2 * t * h * v;
  EXPECT_NEAR(m.FlopsPerSample(40, 12), 3 * (3 * enc + 2 * dec + out), 1.0);
}

}  // namespace
}  // namespace braid

// The GPT family (causal LM, GPT-2 and its options): recipe `gpt`.
#pragma once
#include "recipes/family.h"

namespace braid {

const Family& GptFamily();
// Its Hugging Face layout: GPT2LMHeadModel (gpt_hf.cc).
const HfLayout& GptHfLayout();
// LlamaForCausalLM / MistralForCausalLM (llama_hf.cc); GptHfLayout hands over to it.
const HfLayout& LlamaHfLayout();
// GPTNeoXForCausalLM and BloomForCausalLM (neox_bloom_hf.cc), for model.hf_layout gpt_neox / bloom.
const HfLayout& GptNeoxHfLayout();
const HfLayout& BloomHfLayout();
// FalconForCausalLM (falcon_hf.cc), for model.hf_layout falcon.
const HfLayout& FalconHfLayout();
// Qwen2MoeForCausalLM (qwen_moe_hf.cc), for model.hf_layout qwen2_moe (and auto for a mixture of
// experts with shared experts or q, k, v biases).
const HfLayout& Qwen2MoeHfLayout();
// Our ungated activations and the hidden_act names of GPT-NeoX, GPTBigCode and Falcon.
const HfNameTable& UngatedHfActivations();
// GPTBigCodeForCausalLM (StarCoder), for learned positions with one key/value head.
const HfLayout& GptBigCodeHfLayout();
// GPT-2's names (transformer.wte, wpe, h.{i}.ln_1, attn.c_attn, ..., ln_f), shared by GPT-2
// (Conv1D: linear weights stored [in, out], transposed) and GPTBigCode (PyTorch's [out, in]).
std::vector<HfTensor> Gpt2StyleNames(const Config& c, bool conv1d);
// The --set overrides GPT-2's config.json keys give, shared by GPT-2 and GPTBigCode: n_layer,
// n_embd, n_head, vocab_size, n_positions and layer_norm_epsilon (n_inner is each caller's).
absl::Status Gpt2StyleSizes(const JsonValue& hf, std::vector<std::string>* sets);

}  // namespace braid

// The GPT family (causal LM, GPT-2 and its options): recipe `gpt`.
#pragma once
#include "recipes/family.h"

namespace braid {

const Family& GptFamily();
// Its Hugging Face layout: GPT2LMHeadModel (gpt_hf.cc).
const HfLayout& GptHfLayout();
// LlamaForCausalLM / MistralForCausalLM (llama_hf.cc); GptHfLayout hands over to it.
const HfLayout& LlamaHfLayout();

}  // namespace braid

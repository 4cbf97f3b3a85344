// The config's choices as enums, each with its names in one table. The config reader
// (config.cc) parses a name once, when the recipe is read; code below core/ compares enums, never
// strings; printing, messages and Hugging Face names go through Name().
#pragma once
#include <array>
#include <string>
#include <utility>
#include <vector>

namespace braid {

// model.activation: GELU (erf), GELU (tanh approximation), gated GELU (fc1 holds the gate and the
// value), gated GELU-tanh (T5 v1.1), SwiGLU (LLaMA), ReLU.
enum class Activation { kGelu, kGeluTanh, kGeglu, kGegluTanh, kSwiglu, kRelu };
// model.norm: LayerNorm (weight, bias) or RMSNorm (weight only, no mean subtraction).
enum class NormType { kLayerNorm, kRmsNorm };
// model.position: a learned table, rotary (RoPE) or ALiBi biases (GPT family).
enum class Position { kLearned, kRope, kAlibi };
// model.hf_layout: the Hugging Face layout a GPT-family model is exported in. auto: GPT-2's for
// learned positions, Llama's (Mistral's with a sliding window, Mixtral's with experts) otherwise;
// gpt_neox: GPTNeoXForCausalLM (Pythia); bloom: BloomForCausalLM; falcon: FalconForCausalLM;
// qwen2_moe: Qwen2MoeForCausalLM.
enum class HfLayoutChoice { kAuto, kGptNeox, kBloom, kFalcon, kQwen2Moe };
// train.recompute (Megatron's granularities).
enum class Recompute { kNone, kSelective, kFull };
enum class Precision { kFp32, kBf16 };
enum class TrainDevice { kCpu, kCuda };
enum class LrDecayStyle { kCosine, kLinear, kConstant };
// data.tokenizer.
enum class TokenizerType { kGpt2, kWordPiece, kSentencePiece, kHuggingFace, kTiktoken };
// data.packing (BERT / RoBERTa samples).
enum class Packing { kDocument, kFullSentences };
// parallel.pipeline_schedule: one forward then one backward per micro-batch in the steady state
// (1F1B; interleaved when parallel.virtual_pipeline_size > 1), or every forward before any
// backward (for tests: the most activation memory).
enum class PipelineSchedule { k1F1B, kAllForwardAllBackward };
// logging.level.
enum class LogChoice { kDebug, kInfo, kWarning, kError };

// The names of each enum's values, in the order of the enum.
template <typename E>
struct ChoiceNames;
#define BRAID_CHOICE_NAMES(E, ...)                      \
  template <>                                           \
  struct ChoiceNames<E> {                               \
    static constexpr std::array kNames = {__VA_ARGS__}; \
  };
BRAID_CHOICE_NAMES(Activation, "gelu", "gelu_tanh", "geglu", "geglu_tanh", "swiglu", "relu")
BRAID_CHOICE_NAMES(NormType, "layernorm", "rmsnorm")
BRAID_CHOICE_NAMES(Position, "learned", "rope", "alibi")
BRAID_CHOICE_NAMES(HfLayoutChoice, "auto", "gpt_neox", "bloom", "falcon", "qwen2_moe")
BRAID_CHOICE_NAMES(Recompute, "none", "selective", "full")
BRAID_CHOICE_NAMES(Precision, "fp32", "bf16")
BRAID_CHOICE_NAMES(TrainDevice, "cpu", "cuda")
BRAID_CHOICE_NAMES(LrDecayStyle, "cosine", "linear", "constant")
BRAID_CHOICE_NAMES(TokenizerType, "gpt2", "wordpiece", "sentencepiece", "huggingface", "tiktoken")
BRAID_CHOICE_NAMES(Packing, "document", "full_sentences")
BRAID_CHOICE_NAMES(PipelineSchedule, "1f1b", "all_forward_all_backward")
BRAID_CHOICE_NAMES(LogChoice, "debug", "info", "warning", "error")
#undef BRAID_CHOICE_NAMES

// The config's name of a value ("gelu_tanh").
template <typename E>
const char* Name(E value) {
  return ChoiceNames<E>::kNames[static_cast<size_t>(value)];
}

// Every name of an enum, in order.
template <typename E>
std::vector<std::string> AllNames() {
  return std::vector<std::string>(ChoiceNames<E>::kNames.begin(), ChoiceNames<E>::kNames.end());
}

// The value a name stands for; false when it is none of them.
template <typename E>
bool ParseChoice(const std::string& name, E* value) {
  for (size_t i = 0; i < ChoiceNames<E>::kNames.size(); ++i) {
    if (name == ChoiceNames<E>::kNames[i]) {
      *value = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

// Whether an activation has a gate (fc1 holds the gate and the value).
inline bool IsGated(Activation a) {
  return a == Activation::kGeglu || a == Activation::kGegluTanh || a == Activation::kSwiglu;
}

}  // namespace braid

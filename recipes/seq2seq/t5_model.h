// The T5 model (framework/models/t5.h: T5 v1.1, the original T5 as options) as the families that
// train it share it: the t5 recipe (span corruption) and the ul2 recipe (a mixture of denoisers).
// The model section's keys, the model built from them, its parameter count, the objective
// (seq2seq_task.h), random rows, generation that fills in sentinels, and the Hugging Face layout
// T5ForConditionalGeneration (t5_hf.cc). A family adds its data (keys, checks, samples) and its
// decoder length.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "framework/models/t5.h"
#include "recipes/seq2seq/seq2seq_family.h"
#include "recipes/seq2seq/seq2seq_task.h"

namespace braid {

using T5Task = Seq2SeqTask<T5Model>;

class T5ModelFamily : public Seq2SeqFamily {
 public:
  // The model's keys, data.vocab_extra_ids (the sentinels) and DataKeys().
  std::vector<std::string> keys() const final;
  // The decoder's positions split over TP with sequence parallelism, then CheckData().
  absl::Status Check(const Config& c) const final;
  int64_t ParameterCount(const Config& c, const DerivedSizes& s) const override;
  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override;
  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override;
  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override;
  const HfLayout* hf() const override;
  std::unique_ptr<Generator> MakeGenerator(std::shared_ptr<TpModule> model,
                                           const Config& config) const override;

 protected:
  // The data section's keys this family reads besides data.vocab_extra_ids.
  virtual std::vector<std::string> DataKeys() const = 0;
  // The family's checks of its objective (decoder length, sentinels).
  virtual absl::Status CheckData(const Config& c) const = 0;
};

// Its Hugging Face layout: T5ForConditionalGeneration (t5_hf.cc).
const HfLayout& T5HfLayout();

// The special ids a T5 model's samples need from the tokenizer: EOS, pad, and the sentinels
// counting down from <extra_id_0> (Hugging Face's numbering). An error naming the tokenizer file
// and `recipe` otherwise.
struct T5Specials {
  int64_t eos = 1, pad = 0;
  int64_t first_sentinel = -1;  // <extra_id_0>; sentinel k is first_sentinel - k
  int64_t num_sentinels = 0;
};
absl::StatusOr<T5Specials> T5SpecialsOf(const Config& c, const Tokenizer& tok,
                                        const std::string& recipe);

// A log line describing the model (layers, width, heads, FFN, vocabulary and sentinels).
std::string T5ModelNote(const Config& c, const DerivedSizes& s, int64_t sentinels,
                        const std::string& recipe);

}  // namespace braid

// The UL2 family (encoder-decoder, a mixture of denoisers; Tay et al., 2022): recipe `ul2`. It
// trains the shared T5 model (recipes/seq2seq/t5_model.h) unchanged on the samples of ul2_data.h.
#pragma once
#include <vector>

#include "absl/status/statusor.h"
#include "recipes/family.h"
#include "recipes/ul2/ul2_data.h"

namespace braid {

const Family& Ul2Family();

// The mixture a config asks for: data.denoisers (the paper's seven when empty) and
// data.denoiser_weights (equal when empty); an error naming the key otherwise.
struct Ul2Mixture {
  std::vector<Denoiser> denoisers;
  std::vector<double> weights;
};
absl::StatusOr<Ul2Mixture> Ul2MixtureOf(const Config& c);

}  // namespace braid

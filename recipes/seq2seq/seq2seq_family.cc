// The encoder-decoder base (see seq2seq_family.h).
#include "recipes/seq2seq/seq2seq_family.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace braid {

int64_t Seq2SeqFamily::LayerCount(const Config& c) const {
  return c.model.num_layers + DecoderLayers(c.model);
}

std::vector<Family::Stack> Seq2SeqFamily::Stacks(const Config& c) const {
  return {{c.model.num_layers, c.model.seq_length, 0},
          {DecoderLayers(c.model), DecoderLength(c), c.model.seq_length}};
}

int64_t Seq2SeqFamily::Seq2SeqParameters(const Config& c, const DerivedSizes& s,
                                         const LayerShape& l, int64_t extra) {
  const int64_t h = c.model.hidden_size, f = s.ffn_hidden_size;
  const int64_t a = c.model.num_attention_heads * s.head_size;
  const int64_t attention = 4 * h * a + l.attention_bias;
  const int64_t mlp = (IsGated(c.model.activation) ? 3 : 2) * h * f + l.mlp_bias;
  const int64_t vocab = s.padded_vocab_size > 0 ? s.padded_vocab_size : s.vocab_size;
  return c.model.num_layers * (attention + mlp + l.encoder_norms * l.norm_width) +
         s.decoder_num_layers * (2 * attention + mlp + l.decoder_norms * l.norm_width) +
         vocab * h * (c.model.tie_embeddings ? 1 : 2) + extra;
}

namespace {

// Raw chunks of `raw_length` tokens of one dataset's part of one split (`n` of them): GPT samples
// (framework/data/gpt_dataset.h) of documents shuffled per epoch and concatenated, the order a
// seeded permutation, the index cached on disk.
absl::StatusOr<std::unique_ptr<SampleSource>> OpenRawChunks(const Config& c,
                                                            std::shared_ptr<IndexedDataset> data,
                                                            int dataset, DocRange docs, int split,
                                                            int64_t n, int64_t raw_length,
                                                            bool may_build) {
  GptIndexSpec spec;
  spec.documents = docs;
  spec.seq_length = raw_length - 1;  // GPT samples are seq_length + 1 tokens
  spec.num_samples = n;
  spec.seed = static_cast<uint64_t>(c.seed) + dataset;
  spec.split_name = kSplitNames[split];
  spec.cache_dir = c.data.cache_dir;
  BRAID_ASSIGN_OR_RETURN(auto raw, GptDataset::Open(std::move(data), spec, may_build));
  return std::unique_ptr<SampleSource>(std::move(raw));
}

}  // namespace

absl::StatusOr<DataSplits> BuildChunkSplits(const RunContext& ctx, int64_t raw_length,
                                            const ChunkSamples& make) {
  const Config& c = ctx.config;
  return BuildFamilySplits(
      ctx,
      [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t n,
          bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
        BRAID_ASSIGN_OR_RETURN(auto raw,
                               OpenRawChunks(c, data, d, docs, s, n, raw_length, may_build));
        return make(std::move(raw), static_cast<uint64_t>(c.seed) * 1000003ULL + 7ULL * d + s);
      });
}

std::string MostFrequentTargetNote(const SampleSource& train, const Seq2SeqRow& r, int64_t vocab,
                                   const Tokenizer& tok) {
  std::vector<int64_t> row(r.length()), all(vocab, 0), hit(all);
  int64_t total = 0, noised = 0;
  const int64_t count = std::min<int64_t>(train.size(), 2000);
  for (int64_t i = 0; i < count; ++i) {
    train.Get(i, row.data());
    for (int64_t k = 0; k < r.dec; ++k) {
      const int64_t t = row[r.labels() + k];
      if (t < 0 || t >= vocab) continue;
      ++all[t], ++total;
      if (r.has_noised && row[r.noised() + k]) ++hit[t], ++noised;
    }
  }
  auto top = std::max_element(all.begin(), all.end());
  std::string note = absl::StrFormat(
      "most frequent target token in the first %d training samples: '%s', %.2f%% of the targets "
      "(the target_acc to beat)",
      count, tok.IdToToken(static_cast<int32_t>(top - all.begin())),
      100.0 * *top / std::max<int64_t>(1, total));
  if (r.has_noised) {
    auto top_hit = std::max_element(hit.begin(), hit.end());
    absl::StrAppendFormat(
        &note,
        "; of the noised targets '%s', %.2f%% (the masked_acc to beat; %.1f%% of the "
        "targets are noised)",
        tok.IdToToken(static_cast<int32_t>(top_hit - hit.begin())),
        100.0 * *top_hit / std::max<int64_t>(1, noised),
        100.0 * noised / std::max<int64_t>(1, total));
  }
  return note;
}

}  // namespace braid

// BERT samples and masking (see bert_data.h).
#include "recipes/bert/bert_data.h"

#include "recipes/bert/bert_batch.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/random.h"
#include "framework/core/status.h"
#include "framework/data/token_names.h"

namespace braid {
namespace fs = std::filesystem;

absl::StatusOr<MaskingSpec> MaskingSpecFor(const Tokenizer& tok, double mask_prob,
                                           int64_t max_predictions, bool whole_word) {
  MaskingSpec m;
  m.mask_prob = mask_prob;
  m.max_predictions = max_predictions;
  m.whole_word = whole_word;
  const SpecialIds& s = tok.special();
  auto named = [&](const char* name) { return TokenIdByName(tok, name); };
  m.cls = static_cast<int32_t>(FirstId({s.cls, named("<s>")}));
  m.sep = static_cast<int32_t>(FirstId({s.sep, named("</s>")}));
  m.mask = static_cast<int32_t>(FirstId({s.mask, named("<mask>")}));
  // "<pad>" first: GPT-2's BPE pads with <|endoftext|>, which RoBERTa keeps as a word.
  m.pad = static_cast<int32_t>(FirstId({named("<pad>"), s.pad, s.unk}));
  std::vector<std::string> missing;
  if (m.cls < 0) missing.push_back("[CLS] (or <s>)");
  if (m.sep < 0) missing.push_back("[SEP] (or </s>)");
  if (m.mask < 0) missing.push_back("[MASK] (or <mask>)");
  if (m.pad < 0) missing.push_back("a padding id");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", tok.name(), " vocabulary lacks ", absl::StrJoin(missing, ", "),
        ", which the BERT recipe needs. HINT: WordPiece vocab.txt files have them; for "
        "SentencePiece train with --user_defined_symbols='[CLS],[SEP],[MASK]' and a pad id; for "
        "GPT-2's BPE (RoBERTa) set data.added_tokens: [\"<s>\", \"<pad>\", \"</s>\", "
        "\"<mask>\"]."));
  }
  const int64_t v = tok.VocabSize();
  m.special.assign(v, false);
  m.continuation.assign(v, false);
  for (int32_t id : {s.cls, s.sep, s.mask, s.pad, s.unk, s.eod, s.bos, m.cls, m.sep, m.mask, m.pad})
    if (id >= 0 && id < v) m.special[id] = true;
  for (int64_t id = 0; id < v; ++id) {
    std::string piece = tok.IdToToken(static_cast<int32_t>(id));
    if (tok.name() == "wordpiece") {
      m.continuation[id] = piece.rfind("##", 0) == 0;
    } else if (tok.name() == "sentencepiece") {
      m.continuation[id] = !piece.empty() && piece.rfind("\xE2\x96\x81", 0) != 0 &&
                           !m.special[id] &&
                           !(piece.size() > 2 && piece.front() == '<' && piece.back() == '>');
    }
    if (piece.size() > 2 && piece.front() == '[' && piece.back() == ']' &&
        piece.find(' ') == std::string::npos && tok.name() != "sentencepiece") {
      m.special[id] = true;  // [unused*] and friends
    }
  }
  return m;
}

std::vector<int64_t> ApplyMasking(std::vector<int64_t>& tokens, const MaskingSpec& m, Rng& rng) {
  std::vector<int64_t> labels(tokens.size(), -100);
  std::vector<std::vector<size_t>> groups;
  int64_t candidates = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    int64_t t = tokens[i];
    if (t == m.cls || t == m.sep || t == m.pad) continue;
    ++candidates;
    bool cont = m.whole_word && !groups.empty() && t >= 0 &&
                t < static_cast<int64_t>(m.continuation.size()) && m.continuation[t] &&
                groups.back().back() + 1 == i;
    if (cont) {
      groups.back().push_back(i);
    } else {
      groups.push_back({i});
    }
  }
  if (candidates == 0) return labels;
  const int64_t target = std::min<int64_t>(
      m.max_predictions,
      std::max<int64_t>(1, static_cast<int64_t>(std::llround(candidates * m.mask_prob))));
  rng.Shuffle(groups);
  int64_t covered = 0;
  const int64_t vocab = static_cast<int64_t>(m.special.size());
  for (const auto& g : groups) {
    if (covered >= target) break;
    if (covered + static_cast<int64_t>(g.size()) > target) continue;
    for (size_t pos : g) {
      labels[pos] = tokens[pos];
      double r = rng.Uniform();
      if (r < 0.8) {
        tokens[pos] = m.mask;
      } else if (r >= 0.9) {
        int64_t pick;
        do {
          pick = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(vocab)));
        } while (m.special[pick]);
        tokens[pos] = pick;
      }
      ++covered;
    }
  }
  return labels;
}

namespace {
std::string Describe(const IndexedDataset& data, const BertDataSpec& s) {
  std::error_code ec;
  return absl::StrFormat(
             "bert v1 data=%s seqs=%d tokens=%d split=%s[%d,%d) seq=%d samples=%d "
             "seed=%d short=%g pair=%d",
             fs::weakly_canonical(data.prefix(), ec).string(), data.num_sequences(),
             data.num_tokens(), s.split_name, s.documents.begin, s.documents.end, s.seq_length,
             s.num_samples, s.seed, s.short_seq_prob, s.binary_head) +
         (s.full_sentences ? " packing=full_sentences" : "");
}

// RoBERTa's FULL-SENTENCES packs: (first sentence, end sentence, max_tokens) over the sentences of
// documents [begin, end), each pack as many whole sentences as fit in max_tokens counting one
// separator at each document boundary inside it (a longer sentence alone, truncated later).
std::vector<int64_t> FullSentencePacks(const IndexedDataset& data, DocRange docs,
                                       int64_t max_tokens) {
  std::vector<int64_t> packs;
  if (docs.end <= docs.begin) return packs;
  int64_t start = data.document_index(docs.begin), len = 0;
  for (int64_t d = docs.begin; d < docs.end; ++d) {
    for (int64_t s = data.document_index(d); s < data.document_index(d + 1); ++s) {
      int64_t add = data.sequence_length(s) + (s == data.document_index(d) && len > 0 ? 1 : 0);
      if (len > 0 && len + add > max_tokens) {
        packs.insert(packs.end(), {start, s, max_tokens});
        start = s;
        len = 0;
        add = data.sequence_length(s);
      }
      len += add;
    }
  }
  if (len > 0) packs.insert(packs.end(), {start, data.document_index(docs.end), max_tokens});
  return packs;
}
}  // namespace

absl::StatusOr<std::unique_ptr<BertDataset>> BertDataset::Open(std::shared_ptr<IndexedDataset> data,
                                                               const BertDataSpec& spec,
                                                               MaskingSpec masking,
                                                               bool may_build) {
  std::unique_ptr<BertDataset> ds(new BertDataset());
  ds->data_ = data;
  ds->spec_ = spec;
  ds->masking_ = std::move(masking);
  const std::string desc = Describe(*data, spec);
  const std::string path =
      IndexCachePath(data->prefix(), spec.cache_dir, "bert", spec.split_name, desc);
  auto cache =
      IndexCache::OpenOrBuild(path, desc, may_build, [&]() -> absl::StatusOr<IndexCache::Arrays> {
        const int64_t max_tokens = spec.seq_length - (spec.binary_head ? 3 : 2);
        const int64_t min_sentences = spec.binary_head ? 2 : 1;
        std::vector<int64_t> packs;
        if (spec.full_sentences) packs = FullSentencePacks(*data, spec.documents, max_tokens);
        for (int64_t d = spec.documents.begin; d < spec.documents.end && !spec.full_sentences;
             ++d) {
          int64_t first = data->document_index(d), end = data->document_index(d + 1);
          if (end - first < min_sentences) continue;
          Rng rng = Rng::Keyed(spec.seed, 0x73686f7274ULL, d);
          auto new_target = [&] {
            return rng.Uniform() < spec.short_seq_prob
                       ? 2 + static_cast<int64_t>(rng.Below(
                                 static_cast<uint64_t>(std::max<int64_t>(1, max_tokens - 1))))
                       : max_tokens;
          };
          int64_t target = new_target(), start = first, len = 0;
          for (int64_t s = first; s < end; ++s) {
            len += data->sequence_length(s);
            if (len >= target || s == end - 1) {
              if (s + 1 - start >= min_sentences && len > 1) {
                packs.insert(packs.end(), {start, s + 1, target});
              }
              start = s + 1;
              len = 0;
              target = new_target();
            }
          }
        }
        const int64_t n_packs = static_cast<int64_t>(packs.size() / 3);
        if (n_packs == 0 && spec.num_samples > 0) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "%s: the %s split has no document with %d+ sentences. HINT: BERT data must be "
              "preprocessed with --split-sentences.",
              data->prefix(), spec.split_name, min_sentences));
        }
        const std::vector<int64_t> order = EpochOrder(n_packs, spec.num_samples, spec.seed);
        return IndexCache::Arrays{{"packs", packs}, {"order", order}};
      });
  if (!cache.ok()) return cache.status();
  ds->cache_ = std::move(*cache);
  ds->packs_ = ds->cache_->array("packs");
  ds->order_ = ds->cache_->array("order");
  if (ds->order_ == nullptr || ds->cache_->size("order") != spec.num_samples) {
    return absl::DataLossError(absl::StrCat(path, ": wrong index sizes. HINT: delete it."));
  }
  if (spec.full_sentences) {
    for (int64_t d = spec.documents.begin; d < spec.documents.end; ++d)
      ds->doc_starts_.push_back(data->document_index(d));
  }
  return ds;
}

int64_t BertDataset::sample_length() const { return BertRow(spec_.seq_length).length(); }

void BertDataset::Get(int64_t i, int64_t* out) const {
  const int64_t s_len = spec_.seq_length;
  const int64_t* pack = packs_ + 3 * order_[i];
  const int64_t first = pack[0], end = pack[1], target = pack[2];
  // Dynamic: keyed by the sample (each epoch's i differs); static: by the pack.
  Rng rng = spec_.dynamic_masking
                ? Rng::Keyed(spec_.seed, 0x62657274ULL, static_cast<uint64_t>(i))
                : Rng::Keyed(spec_.seed, 0x7374617469ULL, static_cast<uint64_t>(order_[i]));
  auto read = [&](int64_t from, int64_t to) {
    std::vector<int64_t> t;
    for (int64_t s = from; s < to; ++s) {
      if (s > from && std::binary_search(doc_starts_.begin(), doc_starts_.end(), s)) {
        t.push_back(masking_.sep);  // a document boundary inside a full-sentences pack
      }
      std::vector<int64_t> seq = data_->Sequence(s);
      t.insert(t.end(), seq.begin(), seq.end());
    }
    return t;
  };
  std::vector<int64_t> a, b;
  int64_t sop = 0;
  if (spec_.binary_head) {
    int64_t a_end =
        first + 1 + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(end - first - 1)));
    a = read(first, a_end);
    b = read(a_end, end);
    if (rng.Uniform() < 0.5) {
      std::swap(a, b);
      sop = 1;
    }
  } else {
    a = read(first, end);
  }
  // Truncate the longer segment, from the front or the back at random, until it fits.
  const int64_t budget = std::min(target, s_len - (spec_.binary_head ? 3 : 2));
  while (static_cast<int64_t>(a.size() + b.size()) > budget) {
    std::vector<int64_t>& longer = a.size() >= b.size() ? a : b;
    if (rng.Uniform() < 0.5) {
      longer.erase(longer.begin());
    } else {
      longer.pop_back();
    }
  }
  std::vector<int64_t> tokens = {masking_.cls};
  std::vector<int64_t> types = {0};
  for (int64_t t : a) tokens.push_back(t), types.push_back(0);
  tokens.push_back(masking_.sep);
  types.push_back(0);
  if (spec_.binary_head) {
    for (int64_t t : b) tokens.push_back(t), types.push_back(1);
    tokens.push_back(masking_.sep);
    types.push_back(1);
  }
  std::vector<int64_t> labels = ApplyMasking(tokens, masking_, rng);
  const int64_t n = static_cast<int64_t>(tokens.size());
  const BertRow row(s_len);
  for (int64_t k = 0; k < s_len; ++k) {
    bool real = k < n;
    out[row.ids() + k] = real ? tokens[k] : masking_.pad;
    out[row.types() + k] = real ? types[k] : 0;
    out[row.padding() + k] = real ? 0 : 1;
    out[row.labels() + k] = real ? labels[k] : -100;
  }
  out[row.sop()] = sop;
}

}  // namespace braid

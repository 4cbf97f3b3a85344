// Benchmark of document-masked attention (data.reset_attention_mask) against the plain causal
// mask: one GPT model, the same packed samples (documents of --doc-min..--doc-max tokens, each
// ending in the end-of-document token), forward + backward of the loss, the two masks
// alternating in one process. Prints tokens/s of each (median of --steps after 2 warm-up
// iterations) and their ratio; never fails on time.
//   bench_document_mask [--layers 4 --hidden 256 --heads 4 --seq 1024 --micro 4 --vocab 8192
//                        --doc-min 150 --doc-max 250 --steps 8 --threads 2 --position learned]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "framework/core/flags.h"
#include "framework/core/random.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"

ABSL_FLAG(int64_t, layers, 4, "layers");
ABSL_FLAG(int64_t, hidden, 256, "hidden size");
ABSL_FLAG(int64_t, heads, 4, "attention heads");
ABSL_FLAG(int64_t, seq, 1024, "sequence length");
ABSL_FLAG(int64_t, micro, 4, "samples per iteration");
ABSL_FLAG(int64_t, vocab, 8192, "vocabulary size (the last id is the end-of-document token)");
ABSL_FLAG(int64_t, doc_min, 150, "shortest document, tokens");
ABSL_FLAG(int64_t, doc_max, 250, "longest document, tokens");
ABSL_FLAG(int64_t, steps, 8, "timed iterations per mask (after 2 warm-up)");
ABSL_FLAG(int64_t, threads, 2, "intra-op threads");
ABSL_FLAG(std::string, position, "learned", "learned | rope | alibi");

namespace braid {
namespace {

int Main(int argc, char** argv) {
  CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: bench_document_mask [--layers N --hidden N --heads N --seq N --micro N --vocab N]\n"
      "                           [--doc-min N --doc-max N --steps N --threads N]\n"
      "                           [--position learned|rope|alibi]\n"
      "Times forward + backward with the document mask and with the plain causal mask.\n";
  ParseCommandLineOrExit(argc, argv, cl);
  for (auto* f : {&FLAGS_layers, &FLAGS_hidden, &FLAGS_heads, &FLAGS_seq, &FLAGS_micro,
                  &FLAGS_vocab, &FLAGS_doc_min, &FLAGS_steps, &FLAGS_threads}) {
    if (absl::GetFlag(*f) <= 0) {
      UsageError(
          absl::StrCat("--", absl::GetFlagReflectionHandle(*f).Name(), " must be positive."));
    }
  }
  if (absl::GetFlag(FLAGS_doc_max) < absl::GetFlag(FLAGS_doc_min)) {
    UsageError("--doc-max must be at least --doc-min.");
  }
  const std::string position = absl::GetFlag(FLAGS_position);
  if (position != "learned" && position != "rope" && position != "alibi") {
    UsageError("--position: expected learned, rope or alibi.");
  }
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rt.status().message()).c_str());
    return 1;
  }
  torch::set_num_threads(static_cast<int>(absl::GetFlag(FLAGS_threads)));
  const int64_t seq = absl::GetFlag(FLAGS_seq), micro = absl::GetFlag(FLAGS_micro);
  const int64_t vocab = absl::GetFlag(FLAGS_vocab), eod = vocab - 1;

  GptConfig c;
  c.layers = absl::GetFlag(FLAGS_layers);
  c.max_positions = seq;
  c.vocab_size = c.padded_vocab = vocab;
  c.block.hidden = absl::GetFlag(FLAGS_hidden);
  c.block.heads = absl::GetFlag(FLAGS_heads);
  c.block.ffn = 4 * c.block.hidden;
  c.eod = eod;
  if (position == "rope") {
    c.position = Position::kRope;
    c.block.rope_theta = 10000;
  } else if (position == "alibi") {
    c.position = Position::kAlibi;
  }
  GptConfig masked = c;
  masked.reset_attention_mask = masked.reset_position_ids = true;

  // Packed rows of seq + 1 tokens: documents of doc_min..doc_max tokens, the last one cut.
  Rng rng = Rng::Keyed(7, 0);
  torch::Tensor rows = torch::empty({micro, seq + 1}, torch::kLong);
  int64_t documents = 0;
  for (int64_t b = 0; b < micro; ++b) {
    int64_t left = 0;
    for (int64_t j = 0; j <= seq; ++j) {
      if (left == 0) {
        const uint64_t span =
            static_cast<uint64_t>(absl::GetFlag(FLAGS_doc_max) - absl::GetFlag(FLAGS_doc_min) + 1);
        left = absl::GetFlag(FLAGS_doc_min) + static_cast<int64_t>(rng.Below(span));
        ++documents;
      }
      rows[b][j] = --left == 0 ? eod : static_cast<int64_t>(rng.Below(eod));
    }
  }
  GptBatch batch = GptBatch::FromRows(rows);

  // The same weights for both (same seed); each timed in turn.
  GptModel plain(TpEnv{rt->get()->world(), 1}, c), doc(TpEnv{rt->get()->world(), 1}, masked);
  TpRng tp_rng(1, 0, 0);
  auto time_one = [&](GptModel& m) {
    m.zero_grad();
    const auto t0 = std::chrono::steady_clock::now();
    m.Loss(batch.tokens, batch.labels, tp_rng).backward();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> tp, td;
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  for (int64_t k = 0; k < steps + 2; ++k) {
    const double a = time_one(plain), b = time_one(doc);
    if (k >= 2) tp.push_back(a), td.push_back(b);
  }
  std::sort(tp.begin(), tp.end());
  std::sort(td.begin(), td.end());
  const double mp = tp[tp.size() / 2], md = td[td.size() / 2];
  const double tokens = static_cast<double>(micro * seq);
  std::printf(
      "model: %ld layers, hidden %ld, %ld heads, %s positions, seq %ld, %ld samples, %.1f "
      "documents a sample\n",
      static_cast<long>(c.layers), static_cast<long>(c.block.hidden),
      static_cast<long>(c.block.heads), position.c_str(), static_cast<long>(seq),
      static_cast<long>(micro), static_cast<double>(documents) / static_cast<double>(micro));
  std::printf("causal mask:   %.0f tokens/s (median %.3f s forward + backward)\n", tokens / mp, mp);
  std::printf("document mask: %.0f tokens/s (median %.3f s forward + backward)\n", tokens / md, md);
  std::printf("ratio document / causal: %.2fx\n", mp / md);
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }

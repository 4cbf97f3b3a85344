// SentencePiece tokenizer (T5 ids: pad 0, eos 1, unk 2; sentinels <extra_id_k>), over the
// library wrapper in sentencepiece_lib.h.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "framework/data/sentencepiece_lib.h"
#include "framework/data/tokenizer.h"

namespace braid {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int> ids = model_.Encode(std::string(text));
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    return model_.Decode(std::vector<int>(ids.begin(), ids.end()));
  }
  std::string IdToToken(int32_t id) const override {
    return id >= 0 && id < model_.Size() ? model_.IdToPiece(id) : "";
  }
  int64_t VocabSize() const override { return model_.Size(); }
  const SpecialIds& special() const override { return special_; }
  std::string name() const override { return "sentencepiece"; }

  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const TokenizerOptions& o) {
    auto t = std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer());
    {  // a directory or a missing file is named here, before the library reads it
      std::error_code ec;
      const std::filesystem::file_status st = std::filesystem::status(o.vocab_file, ec);
      if (!std::filesystem::is_regular_file(st)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", o.vocab_file, "' is ",
            !std::filesystem::exists(st)        ? "missing"
            : std::filesystem::is_directory(st) ? "a directory"
                                                : "not a regular file",
            ", not a SentencePiece model. HINT: pass the .model file that spm_train wrote."));
      }
    }
    std::string error = t->model_.Load(o.vocab_file);
    if (!error.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.vocab_file, ": not a SentencePiece model (", error,
                       "). HINT: pass the .model file that spm_train wrote, not the .vocab."));
    }
    const sp::Model& m = t->model_;
    SpecialIds& s = t->special_;
    s.pad = m.pad_id();
    s.eod = m.eos_id();
    s.bos = m.bos_id();
    s.unk = m.unk_id();
    auto first = [&](const char* a, const char* b) {
      int id = m.PieceToId(a);
      return id >= 0 ? id : m.PieceToId(b);
    };
    s.cls = first("[CLS]", "<s>");
    s.sep = first("[SEP]", "</s>");
    s.mask = first("[MASK]", "<mask>");
    for (int k = 0;; ++k) {
      int id = m.PieceToId(absl::StrCat("<extra_id_", k, ">"));
      if (id < 0) break;
      s.sentinels.push_back(id);
    }
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

 private:
  sp::Model model_;
  SpecialIds special_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(const TokenizerOptions& o) {
  return SentencePieceTokenizer::Load(o);
}

}  // namespace braid

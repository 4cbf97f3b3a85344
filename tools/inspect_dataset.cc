// `inspect_dataset PREFIX [--dump] [--decode --tokenizer-type T --vocab-file F [--merges-file F]]`
// Validates a Megatron `.bin`/`.idx` pair and prints its header, sizes and largest token id; --dump
// writes every document as a JSON line {"document": d, "sequences": [[ids...], ...]} (what the
// interop tests compare), --decode adds the decoded text.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/tokenizer.h"

ABSL_FLAG(bool, dump, false, "print every document as a JSON line of its sequences' ids");
ABSL_FLAG(bool, decode, false, "with the tokenizer: add the decoded text (implies --dump)");
ABSL_FLAG(std::string, tokenizer_type, "",
          "--decode: gpt2 | wordpiece | sentencepiece | huggingface | tiktoken (or Megatron's "
          "names)");
ABSL_FLAG(std::string, tokenizer_file, "", "--decode: a tokenizer.json or tiktoken file");
ABSL_FLAG(std::string, vocab_file, "", "--decode: the tokenizer's vocabulary or model");
ABSL_FLAG(std::string, merges_file, "", "--decode: GPT-2 merges.txt");

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: inspect_dataset PREFIX [--dump] [--decode --tokenizer-type T --vocab-file F "
      "[--merges-file F]]\n"
      "Validates a Megatron .bin/.idx pair and prints its dtype, sizes and largest token id.\n";
  cl.min_args = cl.max_args = 1;
  const std::string prefix = braid::ParseCommandLineOrExit(argc, argv, cl)[0];
  const bool decode = absl::GetFlag(FLAGS_decode);
  const bool dump = decode || absl::GetFlag(FLAGS_dump);
  braid::TokenizerOptions to;
  if (!absl::GetFlag(FLAGS_tokenizer_type).empty()) {
    const absl::Status type = braid::SetTokenizerType(absl::GetFlag(FLAGS_tokenizer_type), &to);
    if (!type.ok()) braid::UsageError(std::string(type.message()));
  }
  to.vocab_file = absl::GetFlag(FLAGS_vocab_file);
  if (!absl::GetFlag(FLAGS_tokenizer_file).empty())
    to.vocab_file = absl::GetFlag(FLAGS_tokenizer_file);
  to.merges_file = absl::GetFlag(FLAGS_merges_file);
  if (decode && to.type.empty())
    braid::UsageError("--decode needs --tokenizer-type and --vocab-file.");
  auto ds = braid::IndexedDataset::Open(prefix);
  if (!ds.ok()) {
    std::fprintf(stderr, "inspect_dataset: %s\n", std::string(ds.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<braid::Tokenizer> tok;
  if (decode) {
    auto t = braid::MakeTokenizer(to);
    if (!t.ok()) {
      std::fprintf(stderr, "inspect_dataset: %s\n", std::string(t.status().message()).c_str());
      return 1;
    }
    tok = std::move(*t);
  }
  const auto& d = **ds;
  if (!dump) {
    std::printf("%s: dtype %s, %ld documents, %ld sequences, %ld tokens, largest id %ld\n",
                prefix.c_str(), braid::TokenDTypeName(d.dtype()),
                static_cast<long>(d.num_documents()), static_cast<long>(d.num_sequences()),
                static_cast<long>(d.num_tokens()), static_cast<long>(d.MaxTokenId()));
    return 0;
  }
  for (int64_t doc = 0; doc < d.num_documents(); ++doc) {
    std::string line = absl::StrCat("{\"document\": ", doc, ", \"sequences\": [");
    std::vector<int32_t> all;
    for (int64_t s = d.document_index(doc); s < d.document_index(doc + 1); ++s) {
      std::vector<int64_t> ids = d.Sequence(s);
      absl::StrAppend(&line, s > d.document_index(doc) ? ", " : "", "[");
      for (size_t i = 0; i < ids.size(); ++i) {
        absl::StrAppend(&line, i ? ", " : "", ids[i]);
        all.push_back(static_cast<int32_t>(ids[i]));
      }
      line += "]";
    }
    line += "]";
    if (tok) {
      // An id the tokenizer does not have decodes to nothing: say so instead of printing a text
      // that silently lacks it (the dataset was made with another tokenizer).
      for (int32_t id : all) {
        if (id < 0 || id >= tok->VocabSize()) {
          std::fputs(line.c_str(), stdout);
          std::fputs("}\n", stdout);
          std::fprintf(stderr,
                       "inspect_dataset: %s: document %ld holds id %d, outside the %ld ids of %s: "
                       "the dataset was made with another tokenizer. HINT: --vocab-file must be "
                       "the tokenizer preprocess_data used.\n",
                       prefix.c_str(), static_cast<long>(doc), id,
                       static_cast<long>(tok->VocabSize()), to.vocab_file.c_str());
          return 1;
        }
      }
      absl::StrAppend(&line, ", \"text\": ", braid::JsonQuote(tok->Decode(all)));
    }
    line += "}\n";
    std::fputs(line.c_str(), stdout);
  }
  return 0;
}

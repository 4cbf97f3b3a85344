// `inspect_dataset PREFIX [--dump] [--decode --tokenizer-type T --vocab-file F [--merges-file F]]`
// Validates a Megatron `.bin`/`.idx` pair and prints its header and sizes; --dump writes every
// document as a JSON line {"document": d, "sequences": [[ids...], ...]} (what the interop tests
// compare), --decode adds the decoded text.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/core/json.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: inspect_dataset PREFIX [--dump] [--decode --tokenizer-type T "
                 "--vocab-file F [--merges-file F]]\n");
    return 2;
  }
  std::string prefix = argv[1];
  bool dump = false, decode = false;
  braid::TokenizerOptions to;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dump")
      dump = true;
    else if (a == "--decode")
      dump = decode = true;
    else if (a == "--tokenizer-type" && i + 1 < argc)
      to.type = argv[++i];
    else if (a == "--vocab-file" && i + 1 < argc)
      to.vocab_file = argv[++i];
    else if (a == "--merges-file" && i + 1 < argc)
      to.merges_file = argv[++i];
    else {
      std::fprintf(stderr, "inspect_dataset: bad argument '%s'\n", a.c_str());
      return 2;
    }
  }
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
    std::printf("%s: dtype %s, %ld documents, %ld sequences, %ld tokens\n", prefix.c_str(),
                braid::TokenDTypeName(d.dtype()), static_cast<long>(d.num_documents()),
                static_cast<long>(d.num_sequences()), static_cast<long>(d.num_tokens()));
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
    if (tok) absl::StrAppend(&line, ", \"text\": ", braid::JsonQuote(tok->Decode(all)));
    line += "}\n";
    std::fputs(line.c_str(), stdout);
  }
  return 0;
}

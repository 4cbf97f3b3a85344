// libFuzzer harness: the tokenizer file loaders. The first byte picks GPT-2 BPE (the rest is
// vocab.json, then merges.txt after a line "#merges") or WordPiece (the rest is vocab.txt). A
// tokenizer that loads encodes and decodes a fixed text with special tokens and odd characters.
#include <string>

#include "framework/data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  braid::TokenizerOptions o;
  if (data[0] % 2 == 0) {
    auto [vocab, merges] = braid::fuzz::Split(in, "\n#merges\n");
    o.type = "gpt2";
    o.vocab_file = braid::fuzz::WriteScratch("vocab.json", vocab);
    o.merges_file = braid::fuzz::WriteScratch("merges.txt", merges);
    o.parse_special = data[0] % 4 == 0;
  } else {
    o.type = "wordpiece";
    o.vocab_file = braid::fuzz::WriteScratch("vocab.txt", in);
    o.lowercase = data[0] % 4 == 1;
    o.max_chars_per_word = 1 + data[0] % 50;
  }
  auto tok = braid::MakeTokenizer(o);
  if (tok.ok()) {
    const std::vector<int32_t> ids = (*tok)->Encode(
        "Hello, world! <|endoftext|> [CLS] caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 "
        "don't  \t\n x\xff");
    (void)(*tok)->Decode(ids);
    for (int32_t id : ids) (void)(*tok)->IdToToken(id);
    (void)(*tok)->IdToToken(-1);
    (void)(*tok)->IdToToken((*tok)->VocabSize() + 5);
  }
  return 0;
}

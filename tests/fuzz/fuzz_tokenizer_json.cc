// libFuzzer harness: Hugging Face tokenizer.json files and tiktoken rank files. The first byte
// picks the kind (even: tokenizer.json, odd: tiktoken) and, for tokenizer.json, whether the
// post-processor runs. A tokenizer that loads encodes and decodes a fixed text with added tokens,
// odd whitespace, CJK, emoji and invalid UTF-8.
#include <string>

#include "framework/data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  braid::TokenizerOptions o;
  if (data[0] % 2 == 0) {
    o.type = "huggingface";
    o.vocab_file = braid::fuzz::WriteScratch("tokenizer.json", in);
    o.add_special_tokens = data[0] % 4 == 0;
  } else {
    o.type = "tiktoken";
    o.vocab_file = braid::fuzz::WriteScratch("tokenizer.model", in);
  }
  auto tok = braid::MakeTokenizer(o);
  if (tok.ok()) {
    const std::vector<int32_t> ids = (*tok)->Encode(
        "Hello, world! <|endoftext|> <s>[CLS] caf\xc3\xa9 e\xcc\x81 \xe4\xb8\xad\xe6\x96\x87 "
        "\xf0\x9f\x98\x80 don't  \t\n\n 12345 x\xff\xc3");
    (void)(*tok)->Decode(ids);
    for (int32_t id : ids) (void)(*tok)->IdToToken(id);
    (void)(*tok)->Decode({-1, 0, 1, static_cast<int32_t>((*tok)->VocabSize() + 5)});
    (void)(*tok)->IdToToken(-1);
    (void)(*tok)->IdToToken((*tok)->VocabSize() + 5);
  }
  return 0;
}

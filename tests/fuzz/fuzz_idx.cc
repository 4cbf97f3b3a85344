// libFuzzer harness: the Megatron .idx reader. The input is an .idx file; the .bin beside it holds
// the number of bytes its first 4 bytes say (mod 64 KiB). A dataset that opens is read whole.
#include <cstring>
#include <string>

#include "framework/data/indexed_dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t bin_bytes;
  std::memcpy(&bin_bytes, data, 4);
  bin_bytes %= 65536;
  const std::string_view idx(reinterpret_cast<const char*>(data) + 4, size - 4);
  braid::fuzz::WriteScratch("d.idx", idx);
  std::string bin(bin_bytes, '\0');
  for (uint32_t i = 0; i < bin_bytes; ++i) bin[i] = static_cast<char>(i * 7);
  braid::fuzz::WriteScratch("d.bin", bin);
  std::remove((braid::fuzz::ScratchDir() + "/d.maxid").c_str());
  auto ds = braid::IndexedDataset::Open(braid::fuzz::ScratchDir() + "/d");
  if (ds.ok()) {
    for (int64_t d = 0; d < (*ds)->num_documents(); ++d) {
      for (int64_t s = (*ds)->document_index(d); s < (*ds)->document_index(d + 1); ++s) {
        (void)(*ds)->Sequence(s);
      }
    }
    (void)(*ds)->MaxTokenId();
  }
  return 0;
}

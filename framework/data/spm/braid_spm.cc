// libbraid_spm.so: libsentencepiece behind a C API (braid_spm.h). Loaded with RTLD_DEEPBIND by
// sentencepiece_lib.cc; includes nothing of LibTorch, Abseil or protobuf.
#include "framework/data/spm/braid_spm.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>

namespace {
char* Copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}
sentencepiece::SentencePieceProcessor* P(void* m) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(m);
}
}  // namespace

extern "C" {
void* braid_spm_load(const char* path, char** error) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  auto status = p->Load(path);
  if (!status.ok()) {
    *error = Copy(status.ToString());
    delete p;
    return nullptr;
  }
  return p;
}
void braid_spm_free(void* model) { delete P(model); }
void braid_spm_free_buffer(void* buffer) { std::free(buffer); }
int* braid_spm_encode(void* model, const char* text, size_t length, size_t* count) {
  std::vector<int> ids;
  P(model)->Encode(std::string(text, length), &ids).IgnoreError();
  *count = ids.size();
  int* out = static_cast<int*>(std::malloc(sizeof(int) * (ids.size() + 1)));
  std::memcpy(out, ids.data(), sizeof(int) * ids.size());
  return out;
}
char* braid_spm_decode(void* model, const int* ids, size_t count) {
  std::string out;
  P(model)->Decode(std::vector<int>(ids, ids + count), &out).IgnoreError();
  return Copy(out);
}
char* braid_spm_id_to_piece(void* model, int id) { return Copy(P(model)->IdToPiece(id)); }
int braid_spm_piece_to_id(void* model, const char* piece) {
  auto* p = P(model);
  int id = p->PieceToId(piece);
  return id == p->unk_id() && p->IdToPiece(id) != piece ? -1 : id;
}
int braid_spm_info(void* model, int what) {
  auto* p = P(model);
  switch (what) {
    case 0:
      return p->GetPieceSize();
    case 1:
      return p->pad_id();
    case 2:
      return p->eos_id();
    case 3:
      return p->bos_id();
    case 4:
      return p->unk_id();
  }
  return -1;
}
}

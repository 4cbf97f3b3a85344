// libsentencepiece, loaded in isolation. Debian's libsentencepiece carries its own copy of
// protobuf 3.14 (lite) under the same symbol names as the libprotobuf 3.21 that LibTorch loads:
// linked normally, one library's code calls into the other's and the process aborts at start-up.
// So the library is wrapped by libbraid_spm.so (spm/braid_spm.cc, a C API) and opened with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): its symbols bind to its own copies and stay out of the
// global scope. This header exposes only standard types.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace braid::sp {

class Model {
 public:
  Model();
  ~Model();
  // Returns "" on success, else what went wrong (library not found, model unreadable).
  std::string Load(const std::string& path);
  std::vector<int> Encode(const std::string& text) const;
  std::string Decode(const std::vector<int>& ids) const;
  std::string IdToPiece(int id) const;
  int PieceToId(const std::string& piece) const;  // -1 when absent
  int Size() const;
  int pad_id() const;
  int eos_id() const;
  int bos_id() const;
  int unk_id() const;

 private:
  void* handle_ = nullptr;  // the model inside libbraid_spm.so
};

}  // namespace braid::sp

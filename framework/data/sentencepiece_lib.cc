// Loads libbraid_spm.so in isolation and calls it (see sentencepiece_lib.h).
#include "framework/data/sentencepiece_lib.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "braid/build_config.h"
#include "framework/data/spm/braid_spm.h"

namespace braid::sp {
namespace {

struct Api {
  decltype(&braid_spm_load) load;
  decltype(&braid_spm_free) free_model;
  decltype(&braid_spm_free_buffer) free_buffer;
  decltype(&braid_spm_encode) encode;
  decltype(&braid_spm_decode) decode;
  decltype(&braid_spm_id_to_piece) id_to_piece;
  decltype(&braid_spm_piece_to_id) piece_to_id;
  decltype(&braid_spm_info) info;
  std::string error;
};

// Candidates: $BRAID_SPM_LIB, the build tree, ../lib next to the running executable.
const Api& GetApi() {
  static Api api;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> paths;
    if (const char* env = std::getenv("BRAID_SPM_LIB")) paths.push_back(env);
    paths.push_back(BRAID_SPM_LIBRARY);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
      std::string dir(exe, n);
      dir = dir.substr(0, dir.rfind('/'));
      paths.push_back(dir + "/../lib/libbraid_spm.so");
    }
    void* h = nullptr;
    std::string tried;
    for (const std::string& p : paths) {
      h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (h != nullptr) break;
      tried += "\n  " + p + ": " + dlerror();
    }
    if (h == nullptr) {
      api.error = "cannot load libbraid_spm.so (the SentencePiece wrapper); tried:" + tried +
                  "\nHINT: build it (tools/setup.sh) or point BRAID_SPM_LIB at it.";
      return;
    }
    api.load = reinterpret_cast<decltype(api.load)>(dlsym(h, "braid_spm_load"));
    api.free_model = reinterpret_cast<decltype(api.free_model)>(dlsym(h, "braid_spm_free"));
    api.free_buffer =
        reinterpret_cast<decltype(api.free_buffer)>(dlsym(h, "braid_spm_free_buffer"));
    api.encode = reinterpret_cast<decltype(api.encode)>(dlsym(h, "braid_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(dlsym(h, "braid_spm_decode"));
    api.id_to_piece =
        reinterpret_cast<decltype(api.id_to_piece)>(dlsym(h, "braid_spm_id_to_piece"));
    api.piece_to_id =
        reinterpret_cast<decltype(api.piece_to_id)>(dlsym(h, "braid_spm_piece_to_id"));
    api.info = reinterpret_cast<decltype(api.info)>(dlsym(h, "braid_spm_info"));
    if (!api.load || !api.free_model || !api.free_buffer || !api.encode || !api.decode ||
        !api.id_to_piece || !api.piece_to_id || !api.info) {
      api.error = "libbraid_spm.so lacks a braid_spm_* function: rebuild it.";
      api.load = nullptr;
    }
  });
  return api;
}

std::string Take(char* s) {
  std::string out = s == nullptr ? "" : s;
  GetApi().free_buffer(s);
  return out;
}

}  // namespace

Model::Model() = default;
Model::~Model() {
  if (handle_ != nullptr) GetApi().free_model(handle_);
}

std::string Model::Load(const std::string& path) {
  const Api& api = GetApi();
  if (api.load == nullptr) return api.error;
  char* error = nullptr;
  handle_ = api.load(path.c_str(), &error);
  return handle_ != nullptr ? "" : Take(error);
}

std::vector<int> Model::Encode(const std::string& text) const {
  size_t n = 0;
  int* ids = GetApi().encode(handle_, text.data(), text.size(), &n);
  std::vector<int> out(ids, ids + n);
  GetApi().free_buffer(ids);
  return out;
}
std::string Model::Decode(const std::vector<int>& ids) const {
  return Take(GetApi().decode(handle_, ids.data(), ids.size()));
}
std::string Model::IdToPiece(int id) const { return Take(GetApi().id_to_piece(handle_, id)); }
int Model::PieceToId(const std::string& piece) const {
  return GetApi().piece_to_id(handle_, piece.c_str());
}
int Model::Size() const { return GetApi().info(handle_, 0); }
int Model::pad_id() const { return GetApi().info(handle_, 1); }
int Model::eos_id() const { return GetApi().info(handle_, 2); }
int Model::bos_id() const { return GetApi().info(handle_, 3); }
int Model::unk_id() const { return GetApi().info(handle_, 4); }

}  // namespace braid::sp

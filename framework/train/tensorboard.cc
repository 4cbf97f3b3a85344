// TensorBoard event writer (see tensorboard.h).
#include "framework/train/tensorboard.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/crc32c.h"
#include "framework/core/status.h"
#include "tensorboard.pb.h"

namespace braid {

uint32_t MaskedCrc32c(const void* data, size_t n) {
  uint32_t crc = Crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace {
double WallTime() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return tv.tv_sec + tv.tv_usec / 1e6;
}
}  // namespace

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Create(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  char host[256] = "host";
  gethostname(host, sizeof(host) - 1);
  std::unique_ptr<EventWriter> w(new EventWriter());
  w->path_ =
      absl::StrFormat("%s/events.out.tfevents.%d.%s", dir, static_cast<int64_t>(WallTime()), host);
  w->f_ = std::fopen(w->path_.c_str(), "wb");
  if (w->f_ == nullptr) {
    return absl::InternalError(absl::StrCat(w->path_, ": cannot create the TensorBoard file"));
  }
  proto::Event e;
  e.set_wall_time(WallTime());
  e.set_file_version("brain.Event:2");
  w->Write(e.SerializeAsString());
  BRAID_RETURN_IF_ERROR(w->Flush());
  return w;
}

EventWriter::~EventWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

void EventWriter::Write(const std::string& record) {
  uint64_t len = record.size();
  uint32_t len_crc = MaskedCrc32c(&len, 8);
  uint32_t data_crc = MaskedCrc32c(record.data(), record.size());
  bool ok = std::fwrite(&len, 8, 1, f_) == 1 && std::fwrite(&len_crc, 4, 1, f_) == 1 &&
            std::fwrite(record.data(), 1, record.size(), f_) == record.size() &&
            std::fwrite(&data_crc, 4, 1, f_) == 1;
  failed_ = failed_ || !ok;
}

void EventWriter::Scalar(const std::string& tag, int64_t step, double value) {
  proto::Event e;
  e.set_wall_time(WallTime());
  e.set_step(step);
  proto::Summary::Value* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  Write(e.SerializeAsString());
}

absl::Status EventWriter::Flush() {
  if (std::fflush(f_) != 0 || std::ferror(f_) != 0) failed_ = true;
  if (!failed_) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(path_, ": cannot write the TensorBoard events (", std::strerror(errno),
                   "). HINT: the run directory must be writable and have free space, or set "
                   "logging.tensorboard=false."));
}

}  // namespace braid

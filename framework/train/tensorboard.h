// TensorBoard event files: `events.out.tfevents.<seconds>.<host>` in a run directory, TFRecord
// framing (u64 length, masked CRC-32C of the length, the record, masked CRC-32C of the record)
// around Event protobufs: a file_version record, then one scalar Summary per value. Rank 0 of a
// run writes it (trainer.cc): loss, lr, grad_norm, tokens_per_s, mfu, data_wait, eval/loss and
// the recipe's metrics.
#pragma once
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"

namespace braid {

class EventWriter {
 public:
  static absl::StatusOr<std::unique_ptr<EventWriter>> Create(const std::string& dir);
  ~EventWriter();
  void Scalar(const std::string& tag, int64_t step, double value);
  // Flushes; an error naming the file when any write since the start failed (disk full, ...).
  absl::Status Flush();
  const std::string& path() const { return path_; }

 private:
  EventWriter() = default;
  void Write(const std::string& record);
  std::FILE* f_ = nullptr;
  std::string path_;
  bool failed_ = false;
};

// TFRecord's masked CRC-32C.
uint32_t MaskedCrc32c(const void* data, size_t n);

}  // namespace braid

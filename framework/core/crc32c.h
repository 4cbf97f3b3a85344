// CRC-32C (Castagnoli), as checkpoint payloads (and TensorBoard records) use it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace braid {

// Extends `crc` (0 to start) over `n` bytes.
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace braid

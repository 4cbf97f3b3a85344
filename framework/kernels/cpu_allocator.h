// A caching CPU allocator for LibTorch: large blocks (>= 1 MiB) go back to a per-size free list
// instead of to the C library, so the next step reuses memory that is already mapped and
// touched. Without it every activation and gradient of a step is a fresh mmap whose pages fault
// in one by one (the kernel zeroes each): a 2M-element GELU then takes 4-6 ms instead of 1, and
// the page faults of both intra-op threads serialise on the process's memory map. Training
// allocates the same sizes every step, so the cache reaches its size after the first step and
// stays there. Small blocks keep the C library's allocator.
//
// Bounded: the idle blocks in the cache never exceed `max_cached_bytes`, nor the most bytes live
// tensors have held at once (a step's blocks come back whole and are reused; a size no step asks
// for any more is freed first, the longest idle first, instead of piling up). A cached block serves
// a request down to 4/5 of its size, so sizes that vary from step to step (a mixture of experts'
// rows per expert) reuse each other's blocks. The cache never holds memory a live tensor uses.
// Thread-safe. Installing it changes the allocator for new CPU tensors only; tensors made before
// keep their own deleter.
#pragma once
#include <cstddef>
#include <cstdint>

namespace braid {

// Installs the allocator (idempotent; later calls only update the bound).
void InstallCachingCpuAllocator(size_t max_cached_bytes = size_t{4} << 30);

struct CpuAllocatorStats {
  int64_t hits = 0, misses = 0;  // large allocations served from the cache / from the C library
  int64_t cached_bytes = 0;      // idle in the cache now
  int64_t live_bytes = 0;        // held by tensors now (large blocks, as rounded)
  int64_t peak_live_bytes = 0;   // the most held at once since install or the last reset
  int64_t high_water_bytes = 0;  // the most held at once since install (the idle cache's bound)
};
CpuAllocatorStats CachingCpuAllocatorStats();
// Starts a new peak of live bytes from what is live now (benchmarks: a peak per phase).
void ResetCachingCpuAllocatorPeak();

}  // namespace braid

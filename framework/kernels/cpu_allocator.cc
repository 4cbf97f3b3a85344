// Caching CPU allocator (see cpu_allocator.h).
#include "framework/kernels/cpu_allocator.h"

#include <algorithm>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace braid {
namespace {

constexpr size_t kLarge = size_t{1} << 20;  // blocks below this use the C library directly
constexpr size_t kRound = size_t{1} << 16;  // sizes of cached blocks are rounded up to 64 KiB
constexpr size_t kSlack = 4;  // a cached block serves requests down to 4/5 of its size

// c10::Allocator changed between LibTorch versions: allocate() lost its const and copy_data()
// became pure virtual (2.3). The layers below declare whichever form this LibTorch has, detected
// from the header itself rather than from version numbers; partial specialisations are only
// compiled for the form in use.
constexpr bool kAllocateIsConst = std::is_same_v<decltype(&c10::Allocator::allocate),
                                                 c10::DataPtr (c10::Allocator::*)(size_t) const>;
template <typename A, typename = void>
struct HasCopyData : std::false_type {};
template <typename A>
struct HasCopyData<A, std::void_t<decltype(&A::copy_data)>> : std::true_type {};

template <bool kConst, typename Base>
struct AllocateLayer : Base {  // allocate() non-const
  c10::DataPtr allocate(size_t n) override { return DoAllocate(n); }
  virtual c10::DataPtr DoAllocate(size_t n) const = 0;
};
template <typename Base>
struct AllocateLayer<true, Base> : Base {  // allocate() const (LibTorch 1.13)
  c10::DataPtr allocate(size_t n) const override { return DoAllocate(n); }
  virtual c10::DataPtr DoAllocate(size_t n) const = 0;
};
template <bool kHasCopy, typename Base>
struct CopyLayer : Base {};
template <typename Base>
struct CopyLayer<true, Base> : Base {
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }
};
using AllocatorBase =
    CopyLayer<HasCopyData<c10::Allocator>::value, AllocateLayer<kAllocateIsConst, c10::Allocator>>;

// The other form compiles too: a stand-in for the LibTorch >= 2.3 interface, checked here so that
// a build against 1.13 also proves the branch a GPU machine's LibTorch takes.
struct NewStyleAllocator {
  virtual ~NewStyleAllocator() = default;
  virtual c10::DataPtr allocate(size_t n) = 0;
  virtual void copy_data(void* dest, const void* src, std::size_t count) const = 0;
};
struct NewStyleProbe final
    : CopyLayer<HasCopyData<NewStyleAllocator>::value, AllocateLayer<false, NewStyleAllocator>> {
  c10::DataPtr DoAllocate(size_t) const override { return {}; }
};
static_assert(!std::is_abstract_v<NewStyleProbe> && HasCopyData<NewStyleAllocator>::value,
              "the LibTorch >= 2.3 allocator form must be complete");

// Every block, large or small, is freed through Release(ptr) (LibTorch's raw_deallocate needs
// a deleter that takes the data pointer): large blocks are known by their pointer in `live_`.
class CachingCpuAllocator final : public AllocatorBase {
 public:
  c10::DataPtr DoAllocate(size_t n) const override {
    if (n < kLarge) {
      void* p = c10::alloc_cpu(n);
      return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    size_t size = (n + kRound - 1) / kRound * kRound;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The smallest idle block that fits, up to kSlack larger: sizes that vary from step to step
      // (a mixture of experts' rows per expert) reuse each other's blocks instead of filling the
      // cache with sizes never asked for again.
      auto it = free_.lower_bound(size);  // no empty lists are kept
      if (it != free_.end() && it->first <= size + size / kSlack) {
        size = it->first;
        p = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        order_.erase(age_.at(p));
        age_.erase(p);
        cached_ -= static_cast<int64_t>(size);
        ++hits_;
      } else {
        ++misses_;
      }
    }
    if (p == nullptr) p = c10::alloc_cpu(size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_[p] = size;
      live_bytes_ += static_cast<int64_t>(size);
      peak_live_ = std::max(peak_live_, live_bytes_);
      high_water_ = std::max(high_water_, live_bytes_);
    }
    return {p, p, &CachingCpuAllocator::Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::Release; }

  static void Release(void* ptr) { Instance().Return(ptr); }

  void Return(void* ptr) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(ptr);
      if (it != live_.end()) {
        const size_t size = it->second;
        live_.erase(it);
        live_bytes_ -= static_cast<int64_t>(size);
        // Idle blocks are bounded by max_cached_ and by the most ever held by live tensors (a
        // step's activations come back whole; sizes a step no longer asks for go first, the
        // longest idle first, instead of filling the cache up to max_cached_).
        const int64_t bound = std::min(max_cached_, high_water_);
        if (static_cast<int64_t>(size) <= bound) {
          while (cached_ + static_cast<int64_t>(size) > bound) EvictOldest();
          free_[size].push_back(ptr);
          order_.push_back({size, ptr});
          age_[ptr] = std::prev(order_.end());
          cached_ += static_cast<int64_t>(size);
          return;
        }
      }
    }
    c10::free_cpu(ptr);  // small blocks, and large ones beyond the bound
  }

  static CachingCpuAllocator& Instance() {
    static CachingCpuAllocator* a = new CachingCpuAllocator();  // never destroyed: tensors may
    return *a;                                                  // outlive static destructors
  }

  void set_max(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    max_cached_ = static_cast<int64_t>(bytes);
  }
  CpuAllocatorStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_, cached_, live_bytes_, peak_live_, high_water_};
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    peak_live_ = live_bytes_;
  }

 private:
  // The longest idle cached block back to the C library (under mu_).
  void EvictOldest() {
    const auto [size, ptr] = order_.front();
    order_.pop_front();
    age_.erase(ptr);
    std::vector<void*>& same = free_.at(size);
    same.erase(std::find(same.begin(), same.end(), ptr));
    if (same.empty()) free_.erase(size);
    cached_ -= static_cast<int64_t>(size);
    c10::free_cpu(ptr);
  }

  mutable std::mutex mu_;
  mutable std::map<size_t, std::vector<void*>> free_;
  // The cached blocks in the order they came back (the oldest first), and where each one is.
  mutable std::list<std::pair<size_t, void*>> order_;
  mutable std::unordered_map<void*, std::list<std::pair<size_t, void*>>::iterator> age_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable int64_t cached_ = 0, hits_ = 0, misses_ = 0, live_bytes_ = 0, peak_live_ = 0;
  mutable int64_t high_water_ = 0;  // the most live bytes ever (not reset with the peak)
  int64_t max_cached_ = 0;
};

}  // namespace

void InstallCachingCpuAllocator(size_t max_cached_bytes) {
  static std::once_flag once;
  CachingCpuAllocator::Instance().set_max(max_cached_bytes);
  std::call_once(once, [] { c10::SetCPUAllocator(&CachingCpuAllocator::Instance(), 1); });
}

CpuAllocatorStats CachingCpuAllocatorStats() { return CachingCpuAllocator::Instance().stats(); }

void ResetCachingCpuAllocatorPeak() { CachingCpuAllocator::Instance().reset_peak(); }

}  // namespace braid

// SPDX-License-Identifier: MIT
// InfoBuffer: the one helper for VFIO's variable-size ("argsz") INFO structs with capability
// chains (VFIO_DEVICE_GET_REGION_INFO, VFIO_IOMMU_GET_INFO) and for flexible-array payloads
// (VFIO_DEVICE_SET_IRQS). The kernel protocol (include/uapi/linux/vfio.h, "Callers of INFO
// ioctls passing insufficiently sized buffers"): if argsz is too small for the chain, the
// kernel sets VFIO_*_FLAG_CAPS, leaves cap_offset 0 and raises argsz to the size it needs;
// the caller retries with that size. Storage is 8-byte aligned for the __u64 fields.
#ifndef VFIOBOX_NATIVE_SRC_INFO_BUFFER_H_
#define VFIOBOX_NATIVE_SRC_INFO_BUFFER_H_

#include <linux/vfio.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "native/src/sys.h"

namespace vfiobox {

class InfoBuffer {
 public:
  /** a zeroed buffer of `size` bytes whose first __u32 (argsz) is set to `size`. */
  explicit InfoBuffer(size_t size) { Resize(size); }

  template <typename T>
  T* As() {
    // SAFETY: storage_ is uint64_t-aligned and at least sizeof(T) bytes (callers size it from
    // sizeof(T) or larger); T is a standard-layout uAPI struct, so viewing the bytes as T is
    // how the kernel's own copy_to_user contract is meant to be read.
    return reinterpret_cast<T*>(storage_.data());
  }
  uint8_t* Bytes() {
    // SAFETY: viewing the uint64_t storage as bytes is always valid.
    return reinterpret_cast<uint8_t*>(storage_.data());
  }
  size_t Size() const { return size_; }

  void Resize(size_t size) {
    size_ = size;
    // SAFETY: FAM size calculation: round up to whole uint64_t words so that size_ bytes fit.
    storage_.assign((size + sizeof(uint64_t) - 1) / sizeof(uint64_t), 0);
    uint32_t argsz = static_cast<uint32_t>(size);
    std::memcpy(Bytes(), &argsz, sizeof(argsz));
  }

  /**
   * Issues `request` and, when the kernel raised argsz, retries with the larger size
   * (at most `max_tries` times; the chain may grow between calls). `prepare` refills the
   * request fields after every resize. Returns 0 or -errno.
   */
  int IoctlWithRetry(int fd, unsigned long request, const std::function<void()>& prepare,
                     int max_tries = 4) {
    for (int i = 0; i < max_tries; ++i) {
      prepare();
      int r = sys::Ioctl(fd, request, Bytes());
      if (r < 0) return r;
      uint32_t argsz;
      std::memcpy(&argsz, Bytes(), sizeof(argsz));
      if (argsz <= size_) return 0;
      if (argsz > kMaxInfoBytes) return -E2BIG;
      Resize(argsz);
    }
    return -EAGAIN;
  }

  /** Walks the capability chain from `first` (an offset from the buffer start). `fn` gets
   *  the header and the number of bytes from the header to the end of the buffer. Stops on a
   *  malformed chain (out of bounds, or a `next` that does not move forward). */
  void ForEachCap(
      uint32_t first,
      const std::function<void(const vfio_info_cap_header&, const uint8_t*, size_t)>& fn) {
    uint32_t off = first;
    while (off != 0 && off >= sizeof(uint32_t) && off + sizeof(vfio_info_cap_header) <= size_) {
      vfio_info_cap_header hdr;
      std::memcpy(&hdr, Bytes() + off, sizeof(hdr));
      // SAFETY: off + sizeof(header) <= size_ was checked, so Bytes() + off is in bounds and
      // size_ - off bytes follow it.
      fn(hdr, Bytes() + off, size_ - off);
      if (hdr.next <= off) break;  // chains only move forward; also ends a loop
      off = hdr.next;
    }
  }

  static constexpr size_t kMaxInfoBytes = 1 << 20;

 private:
  std::vector<uint64_t> storage_;
  size_t size_ = 0;
};

}  // namespace vfiobox

#endif  // VFIOBOX_NATIVE_SRC_INFO_BUFFER_H_

// SPDX-License-Identifier: MIT
// Anonymous memory whose start is aligned to a power of two (a 2 MiB DmaBuffer on a huge-page
// boundary): over-allocate by `align`, then give back the unaligned head and the tail, as
// bench/c/vfio_bench.c's alloc_aligned does for the C baseline's buffers. Shared by both sys
// layers (sys_linux.cc, sys_fake.cc), which wrap it.
#ifndef VFIOBOX_NATIVE_SRC_ANON_ALIGNED_H_
#define VFIOBOX_NATIVE_SRC_ANON_ALIGNED_H_

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace vfiobox::sys {

/** 0 and *out = a length-byte private anonymous mapping starting on an align boundary, or -errno.
 */
inline int MapAnonAligned(void** out, size_t length, size_t align) {
  if (length == 0 || align == 0 || (align & (align - 1)) != 0 || length > SIZE_MAX - align) {
    return -EINVAL;
  }
  size_t raw_length = length + align;
  void* raw =
      ::mmap(nullptr, raw_length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return -errno;
  // SAFETY: address arithmetic inside [raw, raw + raw_length), the mapping just made; only
  // whole pages outside [start, start + length) are unmapped (align >= the page size).
  uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  uintptr_t start = (base + align - 1) & ~(uintptr_t{align} - 1);
  if (start > base) ::munmap(raw, start - base);
  size_t tail = base + raw_length - (start + length);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(start + length), tail);
  *out = reinterpret_cast<void*>(start);
  return 0;
}

}  // namespace vfiobox::sys

#endif  // VFIOBOX_NATIVE_SRC_ANON_ALIGNED_H_

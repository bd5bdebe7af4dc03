// SPDX-License-Identifier: MIT
// The syscall layer. Every function returns a value >= 0 or -errno and never touches errno's
// caller-visible state or Napi. Two implementations exist: sys_linux.cc (real syscalls) and
// sys_fake.cc (an in-memory VFIO/iommufd kernel for tests, the rust-vmm fake-ioctl idea).
// Exactly one of them is linked into an addon or test binary.
#ifndef VFIOBOX_NATIVE_SRC_SYS_H_
#define VFIOBOX_NATIVE_SRC_SYS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace vfiobox::sys {

/** "linux" or "fake": which implementation is linked in. */
extern const char* const kLayerName;

int Open(const char* path, int flags);
int Close(int fd);
/** ioctl with a pointer argument; returns the ioctl's non-negative result or -errno. */
int Ioctl(int fd, unsigned long request, void* arg);
/** ioctl with an integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU). */
int IoctlValue(int fd, unsigned long request, unsigned long value);
ssize_t Pread(int fd, void* buf, size_t count, uint64_t offset);
ssize_t Pwrite(int fd, const void* buf, size_t count, uint64_t offset);
/** mmap; on success stores the address in *out and returns 0. fd -1 = anonymous private. */
int Mmap(void** out, size_t length, int prot, int flags, int fd, uint64_t offset);
/**
 * Anonymous private read/write memory of `length` bytes starting at a multiple of `align` (a
 * power of two, at least the page size), so a 2 MiB-aligned buffer can be backed by
 * transparent huge pages and mapped by the IOMMU with 2 MiB pages. Released with Munmap.
 */
int MmapAnonAligned(void** out, size_t length, size_t align);
int Munmap(void* addr, size_t length);
/** eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK. */
int EventFd(unsigned initval);
ssize_t Read(int fd, void* buf, size_t count);
ssize_t Write(int fd, const void* buf, size_t count);
/** poll one fd for POLLIN; 1 if readable, 0 on timeout. Safe to call off the main thread. */
int PollIn(int fd, int timeout_ms);
int Mlock(const void* addr, size_t length);
int Munlock(const void* addr, size_t length);
/** one 64-bit /proc/self/pagemap entry for the page holding `hva`. */
int PagemapEntry(uintptr_t hva, uint64_t* entry);
long PageSize();

}  // namespace vfiobox::sys

#endif  // VFIOBOX_NATIVE_SRC_SYS_H_

// SPDX-License-Identifier: MIT
// Real syscalls for sys.h. Each wrapper converts the -1/errno convention to -errno.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "native/src/anon_aligned.h"
#include "native/src/sys.h"

namespace vfiobox::sys {

const char* const kLayerName = "linux";

namespace {
template <typename T>
T OrErrno(T ret) {
  return ret < 0 ? static_cast<T>(-errno) : ret;
}
}  // namespace

int Open(const char* path, int flags) { return OrErrno(::open(path, flags | O_CLOEXEC)); }

int Close(int fd) {
  // close(2) releases the fd even when it reports EINTR on Linux: never retry.
  return OrErrno(::close(fd));
}

int Ioctl(int fd, unsigned long request, void* arg) { return OrErrno(::ioctl(fd, request, arg)); }

int IoctlValue(int fd, unsigned long request, unsigned long value) {
  return OrErrno(::ioctl(fd, request, value));
}

ssize_t Pread(int fd, void* buf, size_t count, uint64_t offset) {
  ssize_t r;
  do {
    r = ::pread(fd, buf, count, static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  return OrErrno(r);
}

ssize_t Pwrite(int fd, const void* buf, size_t count, uint64_t offset) {
  ssize_t r;
  do {
    r = ::pwrite(fd, buf, count, static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  return OrErrno(r);
}

int Mmap(void** out, size_t length, int prot, int flags, int fd, uint64_t offset) {
  if (fd < 0) flags |= MAP_ANONYMOUS;
  void* p = ::mmap(nullptr, length, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return -errno;
  *out = p;
  return 0;
}

int MmapAnonAligned(void** out, size_t length, size_t align) {
  return MapAnonAligned(out, length, align);
}

int Munmap(void* addr, size_t length) { return OrErrno(::munmap(addr, length)); }

int EventFd(unsigned initval) { return OrErrno(::eventfd(initval, EFD_CLOEXEC | EFD_NONBLOCK)); }

ssize_t Read(int fd, void* buf, size_t count) { return OrErrno(::read(fd, buf, count)); }

ssize_t Write(int fd, const void* buf, size_t count) { return OrErrno(::write(fd, buf, count)); }

int PollIn(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r > 0 && (p.revents & POLLNVAL)) return -EBADF;
  return r > 0 && (p.revents & POLLIN) ? 1 : 0;
}

int Mlock(const void* addr, size_t length) { return OrErrno(::mlock(addr, length)); }

int Munlock(const void* addr, size_t length) { return OrErrno(::munlock(addr, length)); }

int PagemapEntry(uintptr_t hva, uint64_t* entry) {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint64_t off = hva / static_cast<uint64_t>(PageSize()) * sizeof(uint64_t);
  ssize_t r = ::pread(fd, entry, sizeof(*entry), static_cast<off_t>(off));
  int err = r < 0 ? errno : 0;
  ::close(fd);
  if (r < 0) return -err;
  return r == sizeof(*entry) ? 0 : -EIO;
}

long PageSize() { return ::sysconf(_SC_PAGESIZE); }

}  // namespace vfiobox::sys

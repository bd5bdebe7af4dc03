// SPDX-License-Identifier: MIT
// The few vfio-user wire facts the bench programs need (QEMU docs/interop/vfio-user.rst,
// "Header", "VFIO_USER_VERSION", "VFIO_USER_REGION_READ"): one header for every message,
// host byte order, msg_size counts the header. Kept tiny and separate from native/ on purpose:
// the bench client must not share code with the server it measures.
#ifndef VFIOBOX_BENCH_C_VU_WIRE_H_
#define VFIOBOX_BENCH_C_VU_WIRE_H_

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

struct vu_header {
  uint16_t msg_id;
  uint16_t command;
  uint32_t msg_size;
  uint32_t flags;
  uint32_t error;
};
static_assert(sizeof(struct vu_header) == 16, "vfio-user header is 16 bytes");
static_assert(offsetof(struct vu_header, msg_size) == 4, "msg_size at 4");
static_assert(offsetof(struct vu_header, flags) == 8, "flags at 8");

struct vu_region_access {
  uint64_t offset;
  uint32_t region;
  uint32_t count;
};
static_assert(sizeof(struct vu_region_access) == 16, "region access is 16 bytes");

enum {
  VU_VERSION = 1,
  VU_REGION_READ = 9,
  VU_REGION_WRITE = 10,
  VU_FLAG_REPLY = 0x1,
  VU_FLAG_NO_REPLY = 0x10,
  VU_FLAG_ERROR = 0x20,
};

// Reads or writes exactly n bytes; 0 on success, -errno (or -EPIPE on EOF).
static inline int vu_io_all(int fd, void *buf, size_t n, int writing) {
  uint8_t *p = (uint8_t *)buf;
  while (n > 0) {
    ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return -EPIPE;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

#endif  // VFIOBOX_BENCH_C_VU_WIRE_H_

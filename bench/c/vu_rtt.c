// SPDX-License-Identifier: MIT
// The one client of the vfio-user bench, used against both `vfiobox serve edu` and vu_echo, so
// the only difference between the two figures is the server.
//   vu_rtt <socket> rtt <n>      n x 4-byte REGION_READ of BAR0 offset 0, one at a time
//   vu_rtt <socket> posted <n>   n x 4-byte REGION_WRITE with No_reply, then one read to drain
// Prints one JSON line: {"op":..., "n":..., "p50_ns":..., "p99_ns":..., "ops_per_s":...}.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "vu_wire.h"

static uint64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int Connect(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) return -errno;
  return fd;
}

// Reads one reply into buf (at most cap bytes); returns its header's error or -errno.
static int ReadReply(int fd, uint8_t *buf, size_t cap) {
  struct vu_header h;
  int rc = vu_io_all(fd, &h, sizeof(h), 0);
  if (rc != 0) return rc;
  if (h.msg_size < 16 || h.msg_size - 16 > cap) return -EPROTO;
  rc = vu_io_all(fd, buf, h.msg_size - 16, 0);
  if (rc != 0) return rc;
  return (h.flags & VU_FLAG_ERROR) ? -(int)(h.error ? h.error : EIO) : 0;
}

static int Version(int fd) {
  static const char kJson[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
  uint8_t msg[16 + 4 + sizeof(kJson)];
  struct vu_header h = {1, VU_VERSION, sizeof(msg), 0, 0};
  uint16_t version[2] = {0, 0};
  memcpy(msg, &h, 16);
  memcpy(msg + 16, version, 4);
  memcpy(msg + 20, kJson, sizeof(kJson));
  int rc = vu_io_all(fd, msg, sizeof(msg), 1);
  uint8_t reply[4096];
  return rc != 0 ? rc : ReadReply(fd, reply, sizeof(reply));
}

static int Access(int fd, uint16_t id, uint16_t cmd, uint32_t flags, uint64_t offset) {
  uint8_t msg[16 + 16 + 4] = {0};
  int write = cmd == VU_REGION_WRITE;
  struct vu_header h = {id, cmd, write ? 36u : 32u, flags, 0};
  struct vu_region_access a = {offset, 0, 4};
  memcpy(msg, &h, 16);
  memcpy(msg + 16, &a, 16);
  int rc = vu_io_all(fd, msg, h.msg_size, 1);
  if (rc != 0 || (flags & VU_FLAG_NO_REPLY)) return rc;
  uint8_t reply[64];
  return ReadReply(fd, reply, sizeof(reply));
}

static int CompareU64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: vu_rtt <socket> rtt|posted <n>\n");
    return 2;
  }
  long n = strtol(argv[3], NULL, 10);
  int fd = Connect(argv[1]);
  if (n <= 0 || fd < 0 || Version(fd) != 0) {
    fprintf(stderr, "vu_rtt: cannot connect/negotiate on %s\n", argv[1]);
    return 1;
  }
  int posted = strcmp(argv[2], "posted") == 0;
  uint64_t *lat = calloc((size_t)n, sizeof(uint64_t));
  for (long i = 0; i < n / 10 + 1; i++) Access(fd, 2, VU_REGION_READ, 0, 0);  // warm-up
  uint64_t start = NowNs();
  for (long i = 0; i < n; i++) {
    uint64_t t0 = NowNs();
    int rc = posted ? Access(fd, 3, VU_REGION_WRITE, VU_FLAG_NO_REPLY, 4)
                    : Access(fd, 3, VU_REGION_READ, 0, 0);
    if (rc != 0) {
      fprintf(stderr, "vu_rtt: request %ld failed: %s\n", i, strerror(-rc));
      return 1;
    }
    lat[i] = NowNs() - t0;
  }
  if (posted && Access(fd, 4, VU_REGION_READ, 0, 0) != 0) return 1;  // drain: all handled
  uint64_t total = NowNs() - start;
  qsort(lat, (size_t)n, sizeof(uint64_t), CompareU64);
  printf("{\"op\":\"%s\",\"n\":%ld,\"p50_ns\":%llu,\"p99_ns\":%llu,\"ops_per_s\":%.0f}\n",
         posted ? "posted" : "rtt", n, (unsigned long long)lat[n / 2],
         (unsigned long long)lat[(n * 99) / 100], (double)n * 1e9 / (double)total);
  free(lat);
  close(fd);
  return 0;
}

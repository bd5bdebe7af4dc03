// SPDX-License-Identifier: MIT
// The C baseline of bench/dma-copy.mjs: memcpy of SIZE bytes out of a memfd mapped MAP_SHARED
// (what the vfio-user server does with a client's DMA_MAP fd) into a private buffer, the same
// copy the server's dmaRead makes, minus everything around it.
//   memcpy_bench SIZE:N [SIZE:N ...]
// For each pair: N/10 + 1 warm-up copies, then N timed ones. Prints one JSON line per size:
//   {"impl":"c-memcpy","size":4096,"n":200000,"ns_per_copy":61.2,"mb_per_s":66928.1}
// MB/s is 10^6 bytes per second.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Copies n times; the empty asm with a memory clobber keeps gcc from merging or dropping copies
// whose destination is never read.
static void CopyLoop(uint8_t *dst, const uint8_t *src, size_t size, long n) {
  for (long i = 0; i < n; i++) {
    memcpy(dst, src, size);
    __asm__ volatile("" : : "r"(dst) : "memory");
  }
}

static int Measure(size_t size, long n) {
  int fd = memfd_create("vfiobox-bench", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
    fprintf(stderr, "memfd: %s\n", strerror(errno));
    return 1;
  }
  uint8_t *src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  uint8_t *dst = aligned_alloc(64, size);
  if (src == MAP_FAILED || dst == NULL) {
    fprintf(stderr, "mmap/alloc of %zu bytes failed\n", size);
    return 1;
  }
  for (size_t i = 0; i < size; i++) src[i] = (uint8_t)(i * 7);
  memset(dst, 0, size);  // fault every page in before timing
  CopyLoop(dst, src, size, n / 10 + 1);
  uint64_t start = NowNs();
  CopyLoop(dst, src, size, n);
  double ns = (double)(NowNs() - start) / (double)n;
  if (memcmp(dst, src, size) != 0) {
    fprintf(stderr, "copy of %zu bytes is wrong\n", size);
    return 1;
  }
  printf("{\"impl\":\"c-memcpy\",\"size\":%zu,\"n\":%ld,\"ns_per_copy\":%.1f,\"mb_per_s\":%.1f}\n",
         size, n, ns, (double)size * 1e3 / ns);
  munmap(src, size);
  free(dst);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: memcpy_bench SIZE:N [SIZE:N ...]\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    char *colon = strchr(argv[i], ':');
    long size = strtol(argv[i], NULL, 10);
    long n = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (size <= 0 || n <= 0) {
      fprintf(stderr, "bad SIZE:N '%s'\n", argv[i]);
      return 2;
    }
    if (Measure((size_t)size, n) != 0) return 1;
  }
  return 0;
}

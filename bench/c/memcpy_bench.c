// SPDX-License-Identifier: MIT
// The C baseline of bench/dma-copy.mjs: memcpy of SIZE bytes out of a memfd mapped MAP_SHARED
// (what the vfio-user server does with a client's DMA_MAP fd) into a private buffer, the same
// copy the server's dmaRead makes, minus everything around it.
//   memcpy_bench SIZE:N[:SPAN[:w]] [...]
// For each pair: N/10 + 1 warm-up copies, then N timed ones. Without SPAN every copy reads the
// same SIZE bytes (cache-hot); with SPAN (a multiple of SIZE) the k-th copy reads the SIZE
// bytes at (k x SIZE) mod SPAN of a SPAN-byte memfd, streaming through memory larger than the
// caches (what a device's scatter-gather DMA over guest RAM does), into the same SIZE bytes;
// with `:w` the other way round: from the same private SIZE bytes into the memfd, walking it
// (device DMA into guest RAM). Prints one JSON line per pair:
//   {"impl":"c-memcpy","size":4096,"span":4096,"to_memfd":false,"n":200000,"ns_per_copy":61.2,
//    "mb_per_s":66928.1}
// MB/s is 10^6 bytes per second.
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
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

// The same, the k-th copy from src + (k x size) mod span, or into dst + (k x size) mod span.
static void CopySpanLoop(uint8_t *dst, const uint8_t *src, size_t size, size_t span, long n,
                         bool to_memfd) {
  size_t at = 0;
  for (long i = 0; i < n; i++) {
    if (to_memfd)
      memcpy(dst + at, src, size);
    else
      memcpy(dst, src + at, size);
    __asm__ volatile("" : : "r"(dst) : "memory");
    at += size;
    if (at == span) at = 0;
  }
}

static int Measure(size_t size, long n, size_t span, bool to_memfd) {
  int fd = memfd_create("vfiobox-bench", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)span) < 0) {
    fprintf(stderr, "memfd: %s\n", strerror(errno));
    return 1;
  }
  uint8_t *src = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  uint8_t *dst = aligned_alloc(64, size);
  if (src == MAP_FAILED || dst == NULL) {
    fprintf(stderr, "mmap/alloc of %zu bytes failed\n", span);
    return 1;
  }
  for (size_t i = 0; i < span; i++) src[i] = (uint8_t)(i * 7);
  memset(dst, 0, size);  // fault every page in before timing
  if (to_memfd) {        // the memfd is the destination: swap the roles
    uint8_t *memfd_pages = src;
    src = dst;
    dst = memfd_pages;
  }
  uint64_t start = 0;
  if (span == size) {
    CopyLoop(dst, src, size, n / 10 + 1);
    start = NowNs();
    CopyLoop(dst, src, size, n);
  } else {
    CopySpanLoop(dst, src, size, span, n / 10 + 1, to_memfd);
    start = NowNs();
    CopySpanLoop(dst, src, size, span, n, to_memfd);
  }
  double ns = (double)(NowNs() - start) / (double)n;
  if (span == size && memcmp(dst, src, size) != 0) {
    fprintf(stderr, "copy of %zu bytes is wrong\n", size);
    return 1;
  }
  printf("{\"impl\":\"c-memcpy\",\"size\":%zu,\"span\":%zu,\"to_memfd\":%s,\"n\":%ld,"
         "\"ns_per_copy\":%.1f,\"mb_per_s\":%.1f}\n",
         size, span, to_memfd ? "true" : "false", n, ns, (double)size * 1e3 / ns);
  munmap(to_memfd ? dst : src, span);
  free(to_memfd ? src : dst);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: memcpy_bench SIZE:N[:SPAN] [SIZE:N[:SPAN] ...]\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    char *colon = strchr(argv[i], ':');
    char *second = colon ? strchr(colon + 1, ':') : NULL;
    long size = strtol(argv[i], NULL, 10);
    long n = colon ? strtol(colon + 1, NULL, 10) : 0;
    long span = second ? strtol(second + 1, NULL, 10) : size;
    char *third = second ? strchr(second + 1, ':') : NULL;
    bool to_memfd = third != NULL && strcmp(third, ":w") == 0;
    if (size <= 0 || n <= 0 || span < size || span % size != 0 || (third && !to_memfd)) {
      fprintf(stderr, "bad SIZE:N[:SPAN[:w]] '%s' (SPAN: a multiple of SIZE)\n", argv[i]);
      return 2;
    }
    if (Measure((size_t)size, n, (size_t)span, to_memfd) != 0) return 1;
  }
  return 0;
}

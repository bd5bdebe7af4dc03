// SPDX-License-Identifier: MIT
// Checks for the csum plugin (1234:4353, plugins/c/csum) as a guest driver would use it: a
// buffer in guest RAM (one locked page: the only memory a userspace program knows to be
// physically contiguous), its address and length in BAR0, GO, and the checksum read back.
// Served on wasmtime over QEMU's sealed memfd, the plugin reads the buffer through one DMA
// window that stays mapped across commands. BAR0 (src/csum.c):
//   0x08 ADDR_LO  0x0c ADDR_HI  0x10 LEN  0x14 GO  0x18 RESULT  0x1c STATUS
//   0x20 HITS  0x24 MAPS  0x28 COPIES
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "vu-check.h"

enum {
  kRegAddrLo = 0x08,
  kRegAddrHi = 0x0c,
  kRegLen = 0x10,
  kRegGo = 0x14,
  kRegResult = 0x18,
  kRegStatus = 0x1c,
  kRegHits = 0x20,
  kRegMaps = 0x24,
  kRegCopies = 0x28,
  kPage = 4096,
  kOffset = 0x10,  // the buffer starts inside the page, as a real one may
  kLen = 4000,
  kCommands = 20,
};

static uint32_t fnv1a(const volatile uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

void vu_check_csum(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts) {
  (void)opts;
  vu_check(prefix, "ids", true, "%04x:%04x at %s", dev->vendor, dev->device, dev->bdf);
  int err = vu_pci_enable_memory(dev);
  if (!vu_check(prefix, "decode", err == 0, "%s", err ? strerror(-err) : "memory on")) return;
  volatile uint32_t *bar0 = vu_pci_map_bar(dev, 0, kPage);
  volatile uint8_t *page =
      mmap(NULL, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (bar0 == NULL || page == MAP_FAILED || mlock((void *)page, kPage) != 0) {
    vu_check(prefix, "setup", false, "mmap resource0, mmap + mlock a page: %s", strerror(errno));
    return;
  }
  for (unsigned i = 0; i < kPage; i++) page[i] = (uint8_t)(i * 7 + 3);
  uint64_t pa = vu_phys_addr((const void *)(page + kOffset));
  if (vu_check(prefix, "buffer", pa != 0, "%u bytes at PA 0x%llx", kLen, (unsigned long long)pa)) {
    int wrong = 0;
    uint32_t last = 0;
    for (int k = 0; k < kCommands; k++) {
      page[kOffset + k] ^= 0x5a;  // the guest changes its buffer between commands
      __sync_synchronize();
      bar0[kRegAddrLo / 4] = (uint32_t)pa;
      bar0[kRegAddrHi / 4] = (uint32_t)(pa >> 32);
      bar0[kRegLen / 4] = kLen;
      bar0[kRegGo / 4] = 1;
      uint32_t status = bar0[kRegStatus / 4];  // a read: the posted writes before it are done
      last = bar0[kRegResult / 4];
      if (status != 0 || last != fnv1a(page + kOffset, kLen)) wrong++;
    }
    vu_check(prefix, "checksums", wrong == 0, "%d of %d commands right, last 0x%08x",
             kCommands - wrong, kCommands, last);
    vu_check(prefix, "window", true, "maps %u hits %u copies %u", bar0[kRegMaps / 4],
             bar0[kRegHits / 4], bar0[kRegCopies / 4]);
  }
  munlock((void *)page, kPage);
  munmap((void *)page, kPage);
  munmap((void *)bar0, kPage);
}

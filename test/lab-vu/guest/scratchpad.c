// SPDX-License-Identifier: MIT
// Checks for a scratchpad device (1234:5350, plugins/c/scratchpad): BAR2's first page is a
// memory area QEMU maps from the server's region fd (sparse mmap), BAR0 holds the trapped
// registers that reach the same page through the plugin's shared-memory import:
//   0x00 ID 0x53504144   0x04 SUM (FNV-1a 32 of the page)   0x08 FILL (byte i = v + i)
// BAR2 past the page is trapped and reads as 0x7a000000 | offset.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vu-check.h"

enum {
  kRegId = 0x00,
  kRegSum = 0x04,
  kRegFill = 0x08,
  kIdValue = 0x53504144,
  kPage = 4096,
  kBar2Bytes = 8192,
};

struct pad {
  const struct vu_pci_dev *dev;
  volatile uint32_t *bar0;
  volatile uint8_t *bar2;
  const char *prefix;
};

static bool enable_decode(struct pad *s) {
  int err = vu_pci_enable_memory(s->dev);
  return vu_check(s->prefix, "decode", err == 0, "%s", err ? strerror(-err) : "memory on");
}

static uint32_t fnv1a(const volatile uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

void vu_check_scratchpad(const struct vu_pci_dev *dev, const char *prefix,
                         const struct vu_opts *opts) {
  (void)opts;
  struct pad s = {.dev = dev, .prefix = prefix};
  vu_check(s.prefix, "ids", true, "%04x:%04x at %s", dev->vendor, dev->device, dev->bdf);
  if (!enable_decode(&s)) return;
  s.bar0 = vu_pci_map_bar(dev, 0, kPage);
  s.bar2 = vu_pci_map_bar(dev, 2, kBar2Bytes);
  if (!s.bar0 || !s.bar2) {
    vu_check(s.prefix, "map", false, "mmap resource0/resource2: %s", strerror(errno));
    return;
  }
  uint32_t id = s.bar0[kRegId / 4];
  vu_check(s.prefix, "ident", id == kIdValue, "0x%08x", id);
  // the guest writes the page (memory-backed: straight into the server's memfd) ...
  for (unsigned i = 0; i < kPage; i++) s.bar2[i] = (uint8_t)(i * 13 + 5);
  uint32_t want = fnv1a(s.bar2, kPage), sum = s.bar0[kRegSum / 4];
  vu_check(s.prefix, "guest-to-plugin", sum == want, "SUM 0x%08x, page 0x%08x", sum, want);
  // ... and sees what the plugin writes there
  s.bar0[kRegFill / 4] = 0x5a;
  uint8_t first = s.bar2[0], last = s.bar2[kPage - 1];
  vu_check(s.prefix, "plugin-to-guest", first == 0x5a && last == (uint8_t)(0x5a + kPage - 1),
           "after FILL(0x5a): [0] 0x%02x [4095] 0x%02x", first, last);
  uint32_t trapped = ((volatile uint32_t *)s.bar2)[(kPage + 0x10) / 4];
  vu_check(s.prefix, "trapped", trapped == (0x7a000000u | (kPage + 0x10)), "BAR2+0x1010 = 0x%08x",
           trapped);
  munmap((void *)s.bar0, kPage);
  munmap((void *)s.bar2, kBar2Bytes);
}

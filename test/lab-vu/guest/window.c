// SPDX-License-Identifier: MIT
// Checks for the hostile fixture served as hostile-window (1234:bad0,
// test/fixtures/plugins/hostile): a DMA window (WIT 0.1.2 dma.map-window) over one page of
// guest RAM. The page is this program's own (locked, its physical address from
// /proc/self/pagemap), so both sides of the window can be checked from the guest: the plugin's
// plain loads see what the guest wrote, and its stores land in the guest's page. BAR0:
//   0x30 STATUS (0 ok, 0x100 | window-error)   0x70 window IOVA   0x74 map (len | 1 writable)
//   0x78 unmap (buffer + value)   0x7c the u32 at the buffer + offset   0x80 that offset
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vu-check.h"

enum {
  kRegStatus = 0x30,
  kRegWindowIova = 0x70,
  kRegMap = 0x74,
  kRegUnmap = 0x78,
  kRegWord = 0x7c,
  kRegOffset = 0x80,
  kWritable = 1,
  kPage = 4096,
  kStatusUnsupported = 0x106,  // 0x100 | window-error.unsupported
};

struct win {
  const struct vu_pci_dev *dev;
  volatile uint32_t *bar0;
  const char *prefix;
};

/** A BAR read after a write: the server has handled the write (posted or not) once it returns. */
static uint32_t status(struct win *w) { return w->bar0[kRegStatus / 4]; }

/** The plugin's own load of the u32 at its window buffer + offset. */
static uint32_t plugin_load(struct win *w, uint32_t offset) {
  w->bar0[kRegOffset / 4] = offset;
  return w->bar0[kRegWord / 4];
}

static void plugin_store(struct win *w, uint32_t offset, uint32_t value) {
  w->bar0[kRegOffset / 4] = offset;
  w->bar0[kRegWord / 4] = value;
  (void)status(w);
}

void vu_check_window(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts) {
  (void)opts;
  struct win w = {.dev = dev, .prefix = prefix};
  vu_check(w.prefix, "ids", true, "%04x:%04x at %s", dev->vendor, dev->device, dev->bdf);
  int err = vu_pci_enable_memory(dev);
  if (!vu_check(w.prefix, "decode", err == 0, "%s", err ? strerror(-err) : "memory on")) return;
  void *bar = vu_pci_map_bar(dev, 0, kPage);
  volatile uint32_t *page =
      mmap(NULL, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (bar == NULL || page == MAP_FAILED || mlock((void *)page, kPage) != 0) {
    vu_check(w.prefix, "setup", false, "mmap resource0, mmap + mlock a page: %s", strerror(errno));
    return;
  }
  w.bar0 = bar;
  for (unsigned i = 0; i < kPage / 4; i++) page[i] = 0xa5000000u | i;
  uint64_t pa = vu_phys_addr((const void *)page);
  // the fixture's IOVA register takes 32 bits; boot.sh gives the guest 512 MiB
  if (!vu_check(w.prefix, "page", pa != 0 && pa < (1ull << 32), "guest page at PA 0x%llx",
                (unsigned long long)pa))
    goto out;

  w.bar0[kRegWindowIova / 4] = (uint32_t)pa;
  w.bar0[kRegMap / 4] = kPage | kWritable;
  uint32_t st = status(&w);
  if (!vu_check(w.prefix, "map", st == 0, "map-window(PA 0x%llx, 4096, writable): status 0x%x%s",
                (unsigned long long)pa, st,
                st == kStatusUnsupported ? " (unsupported: no sealed memfd, or not wasmtime)" : ""))
    goto out;

  // written before the map and after it: the window is the guest's page, not a copy of it
  uint32_t first = plugin_load(&w, 0x10);
  page[0x800 / 4] = 0x600df00du;
  __sync_synchronize();
  uint32_t later = plugin_load(&w, 0x800);
  vu_check(w.prefix, "plugin-reads-guest", first == (0xa5000000u | 4) && later == 0x600df00du,
           "plugin loads: [0x10] 0x%08x (want 0x%08x), [0x800] 0x%08x after the guest stored it",
           first, 0xa5000000u | 4, later);

  plugin_store(&w, 0x400, 0x5eed1234u);
  __sync_synchronize();
  uint32_t seen = page[0x400 / 4];
  vu_check(w.prefix, "plugin-writes-guest", seen == 0x5eed1234u,
           "the guest's page at 0x400 after the plugin's store: 0x%08x", seen);

  w.bar0[kRegUnmap / 4] = 0;
  st = status(&w);
  uint32_t gone = plugin_load(&w, 0x800);
  vu_check(w.prefix, "unmap", st == 0 && gone == 0 && page[0x800 / 4] == 0x600df00du,
           "unmap-window: status 0x%x, plugin then loads 0x%08x, the guest keeps 0x%08x", st, gone,
           page[0x800 / 4]);
out:
  munlock((void *)page, kPage);
  munmap((void *)page, kPage);
  munmap(bar, kPage);
}

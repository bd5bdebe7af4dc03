// SPDX-License-Identifier: MIT
// csum: a checksum offload engine. The guest puts a buffer's address and length in BAR0, writes
// GO, and reads back FNV-1a 32 of its bytes. The plugin reads the buffer through a DMA window
// (WIT 0.1.2 dma.map-window) when the host offers one, and keeps that window across commands
// while the guest reuses the buffer; where windows are unsupported (the v8 engine, `vfiobox
// test`, guest memory without a sealed fd) or refused, it copies the buffer with dma.read. The
// result is the same either way; the counters say which way each command went.
//
// Registers (BAR0, 32-bit, little-endian; other widths read as 0 and are ignored):
//
//   0x00 ID          RO  0x4d555343 ("CSUM" in memory)
//   0x08 ADDR_LO     RW  guest address (IOVA) of the buffer, low 32 bits
//   0x0c ADDR_HI     RW  high 32 bits
//   0x10 LEN         RW  its length in bytes, 1 to 65536
//   0x14 GO          WO  compute: RESULT and STATUS are set when the write returns
//   0x18 RESULT      RO  FNV-1a 32 of the buffer
//   0x1c STATUS      RO  0 ok, 1 the buffer is not readable (dma-error), 2 bad LEN
//   0x20 HITS        RO  commands read through a window that was already mapped
//   0x24 MAPS        RO  windows mapped (the first command on a buffer, or after the VMM
//                        unmapped the memory under one)
//   0x28 COPIES      RO  commands read with dma.read
//   0x2c MODE        RW  0 window when possible, 1 always dma.read
//
// reset() unmaps the window and clears every register.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulated_device.h"

enum {
  kBar0Bytes = 4096,
  kPage = 4096,
  kMaxLen = 65536,
  // the window: room for kMaxLen bytes starting anywhere in a page
  kSlotBytes = kMaxLen + kPage,
  kRegId = 0x00,
  kRegAddrLo = 0x08,
  kRegAddrHi = 0x0c,
  kRegLen = 0x10,
  kRegGo = 0x14,
  kRegResult = 0x18,
  kRegStatus = 0x1c,
  kRegHits = 0x20,
  kRegMaps = 0x24,
  kRegCopies = 0x28,
  kRegMode = 0x2c,
  kStatusOk = 0,
  kStatusDmaError = 1,
  kStatusBadLen = 2,
  kModeCopy = 1,
};
static const uint32_t kId = 0x4d555343;
static const uint32_t kStateMagic = 0x314d5343;  // "CSM1"

typedef emulated_device_list_u8_t Bytes;

/** The window's target: page-aligned, inside linear memory (map-window's rules). */
_Alignas(4096) static uint8_t slot[kSlotBytes];

static struct {
  uint64_t addr;
  uint32_t len, result, status, hits, maps, copies, mode;
} cs;

/** The window this plugin believes it has over `slot`; the host may have dropped it since. */
static struct {
  bool mapped;
  bool unsupported;  // map-window said so once: it always will, for this instance
  uint64_t iova;
  uint32_t len;
} win;

static uint32_t Fnv1a(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static uint32_t SlotAt(void) { return (uint32_t)(uintptr_t)slot; }

static void Unmap(void) {
  vfiobox_device_dma_window_error_t err;
  if (win.mapped) vfiobox_device_dma_unmap_window(SlotAt(), &err);  // gone already: fine
  win.mapped = false;
}

/**
 * Makes `slot` show guest memory [base, base + span): the window already there (map-window
 * answers busy: no system call), the same one again if the host dropped it (the VMM unmapped
 * that memory, or reconnected), or a new one. False: read with dma.read instead.
 */
static bool EnsureWindow(uint64_t base, uint32_t span) {
  if (win.unsupported || cs.mode == kModeCopy) return false;
  vfiobox_device_dma_window_error_t err;
  if (win.mapped && base >= win.iova && base + span <= win.iova + win.len) {
    if (!vfiobox_device_dma_map_window(win.iova, win.len, SlotAt(), false, &err)) {
      if (err == VFIOBOX_DEVICE_TYPES_WINDOW_ERROR_BUSY) {
        cs.hits++;
        return true;
      }
      win.mapped = false;  // it went, and that memory cannot be mapped now
      return false;
    }
    cs.maps++;  // it had gone (the host dropped it) and is back
    return true;
  }
  Unmap();
  if (!vfiobox_device_dma_map_window(base, span, SlotAt(), false, &err)) {
    if (err == VFIOBOX_DEVICE_TYPES_WINDOW_ERROR_UNSUPPORTED) win.unsupported = true;
    return false;
  }
  win.mapped = true;
  win.iova = base;
  win.len = span;
  cs.maps++;
  return true;
}

static void Go(void) {
  if (cs.len == 0 || cs.len > kMaxLen) {
    cs.status = kStatusBadLen;
    return;
  }
  uint64_t base = cs.addr & ~(uint64_t)(kPage - 1);
  uint64_t end = cs.addr + cs.len;
  if (end < cs.addr) {  // wraps: no such buffer
    cs.status = kStatusDmaError;
    return;
  }
  uint32_t span = (uint32_t)(((end + kPage - 1) & ~(uint64_t)(kPage - 1)) - base);
  if (EnsureWindow(base, span)) {
    cs.result = Fnv1a(slot + (cs.addr - win.iova), cs.len);
    cs.status = kStatusOk;
    return;
  }
  Bytes data;
  vfiobox_device_dma_dma_error_t err;
  if (!vfiobox_device_dma_read(cs.addr, cs.len, &data, &err)) {
    cs.status = kStatusDmaError;
    return;
  }
  cs.result = Fnv1a(data.ptr, data.len);
  cs.status = kStatusOk;
  cs.copies++;
  emulated_device_list_u8_free(&data);
}

void exports_vfiobox_device_device_describe(
    exports_vfiobox_device_device_device_description_t *ret) {
  vfiobox_device_types_bar_description_t *bar = malloc(sizeof(*bar));
  if (bar == NULL) abort();
  *bar = (vfiobox_device_types_bar_description_t){
      .index = 0, .size_bytes = kBar0Bytes, .kind = VFIOBOX_DEVICE_TYPES_BAR_KIND_MEM32};
  *ret = (exports_vfiobox_device_device_device_description_t){
      .vendor_id = 0x1234,
      .device_id = 0x4353,
      .subsystem_vendor_id = 0x1af4,
      .subsystem_id = 0x1100,
      .class_code = 0x108000,  // encryption controller, other
      .revision = 1,
      .bars = {bar, 1},
      .irqs = {.msi_vectors = 0},
      .claimed_ranges = {NULL, 0},
  };
}

uint32_t exports_vfiobox_device_device_config_read(uint32_t offset, uint8_t width) { return 0; }

void exports_vfiobox_device_device_config_write(uint32_t offset, uint8_t width, uint32_t value) {}

bool exports_vfiobox_device_device_region_read(uint8_t bar, uint64_t offset, uint8_t width,
                                               uint64_t *ret,
                                               exports_vfiobox_device_device_access_error_t *err) {
  *ret = 0;
  if (bar != 0 || width != 4) return true;
  switch (offset) {
    case kRegId:
      *ret = kId;
      break;
    case kRegAddrLo:
      *ret = (uint32_t)cs.addr;
      break;
    case kRegAddrHi:
      *ret = (uint32_t)(cs.addr >> 32);
      break;
    case kRegLen:
      *ret = cs.len;
      break;
    case kRegResult:
      *ret = cs.result;
      break;
    case kRegStatus:
      *ret = cs.status;
      break;
    case kRegHits:
      *ret = cs.hits;
      break;
    case kRegMaps:
      *ret = cs.maps;
      break;
    case kRegCopies:
      *ret = cs.copies;
      break;
    case kRegMode:
      *ret = cs.mode;
      break;
  }
  return true;
}

bool exports_vfiobox_device_device_region_write(uint8_t bar, uint64_t offset, uint8_t width,
                                                uint64_t value,
                                                exports_vfiobox_device_device_access_error_t *err) {
  if (bar != 0 || width != 4) return true;  // ignored, as a real device drops them
  uint32_t v = (uint32_t)value;
  switch (offset) {
    case kRegAddrLo:
      cs.addr = (cs.addr & ~(uint64_t)UINT32_MAX) | v;
      break;
    case kRegAddrHi:
      cs.addr = (cs.addr & UINT32_MAX) | (uint64_t)v << 32;
      break;
    case kRegLen:
      cs.len = v;
      break;
    case kRegGo:
      Go();
      break;
    case kRegMode:
      cs.mode = v == kModeCopy ? kModeCopy : 0;
      if (cs.mode == kModeCopy) Unmap();
      break;
  }
  return true;
}

void exports_vfiobox_device_device_reset(void) {
  Unmap();
  memset(&cs, 0, sizeof(cs));
}

void exports_vfiobox_device_device_timer(uint32_t id) {}

// The saved state is the registers; a window is never saved (the next instance maps its own).
void exports_vfiobox_device_device_save_state(Bytes *ret) {
  uint32_t words[5] = {kStateMagic, (uint32_t)cs.addr, (uint32_t)(cs.addr >> 32), cs.len, cs.mode};
  uint8_t *out = malloc(sizeof(words));
  if (out == NULL) abort();
  memcpy(out, words, sizeof(words));  // wasm memory is little-endian
  *ret = (Bytes){out, sizeof(words)};
}

bool exports_vfiobox_device_device_load_state(Bytes *state, emulated_device_string_t *err) {
  uint32_t words[5] = {0};
  bool ok = state->len == sizeof(words);
  if (ok) memcpy(words, state->ptr, sizeof(words));
  emulated_device_list_u8_free(state);  // arguments are owned by the callee
  if (!ok || words[0] != kStateMagic) {
    emulated_device_string_dup(err, "csum: not a csum saved state");
    return false;
  }
  cs.addr = words[1] | (uint64_t)words[2] << 32;
  cs.len = words[3];
  cs.mode = words[4] == kModeCopy ? kModeCopy : 0;
  return true;
}

void exports_vfiobox_device_device_stream_ready(void) {}

// SPDX-License-Identifier: MIT
// scratchpad: a device with one page of plain memory the VMM maps straight into the guest
// (BAR2 [0, 4 KiB), a memory area: WIT 0.1.1 memory-areas) and a few trapped registers in BAR0
// that reach the same page through shared-memory. The rest of BAR2 is trapped and reads as
// 0x7a000000 | offset. Registers (BAR0, 32-bit, little-endian; other widths read as 0):
//
//   0x00 ID       RO  0x53504144 ("DASP" in memory)
//   0x04 SUM      RO  FNV-1a 32 of the whole page, computed on each read
//   0x08 FILL     WO  page byte i = (value + i) & 0xff
//   0x0c STATUS   RO  0 when the last shared-memory call succeeded, else 1 + access-error
//   0x10 PROBE    WO  a deliberately bad shared-memory read, for tests of the host's checks:
//                     0 BAR2+4 KiB (in the BAR, outside the area), 1 BAR2+8 KiB (outside the
//                     BAR), 2 BAR0+0 (no area), 3 4097 bytes from BAR2+0 (past the area)
//   0x14 WORD_AT  RW  offset in the page (multiple of 4) of WORD
//   0x18 WORD     RW  the 32-bit word at WORD_AT, read and written through shared-memory
//
// reset() clears the registers, not the page: the memory is the host's (memory.wit), and it
// keeps its bytes across a restart of the plugin.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulated_device_with_memory.h"

enum {
  kBar0Bytes = 4096,
  kBar2Bytes = 8192,
  kPageBytes = 4096,
  kRegId = 0x00,
  kRegSum = 0x04,
  kRegFill = 0x08,
  kRegStatus = 0x0c,
  kRegProbe = 0x10,
  kRegWordAt = 0x14,
  kRegWord = 0x18,
};
static const uint32_t kId = 0x53504144;
static const uint32_t kStateMagic = 0x31504353;  // "SCP1"

typedef emulated_device_with_memory_list_u8_t Bytes;

static struct {
  uint32_t status;
  uint32_t word_at;
} sp;

/** shared-memory.read into *out (the caller frees it); records the outcome in STATUS. */
static bool MemRead(uint8_t bar, uint64_t offset, uint32_t len, Bytes *out) {
  vfiobox_device_shared_memory_access_error_t err;
  bool ok = vfiobox_device_shared_memory_read(bar, offset, len, out, &err);
  sp.status = ok ? 0 : 1u + err;
  return ok;
}

static void MemWrite(uint8_t bar, uint64_t offset, uint8_t *data, uint32_t len) {
  vfiobox_device_shared_memory_access_error_t err;
  Bytes bytes = {data, len};  // borrowed: an import's arguments stay the caller's
  sp.status = vfiobox_device_shared_memory_write(bar, offset, &bytes, &err) ? 0 : 1u + err;
}

static uint32_t Fnv1a(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static uint32_t Sum(void) {
  Bytes page;
  if (!MemRead(2, 0, kPageBytes, &page)) return 0;
  uint32_t h = Fnv1a(page.ptr, page.len);
  emulated_device_with_memory_list_u8_free(&page);
  return h;
}

static void Fill(uint32_t value) {
  static uint8_t page[kPageBytes];  // static: 4 KiB is a lot for a 16 KiB stack
  for (uint32_t i = 0; i < kPageBytes; i++) page[i] = (uint8_t)(value + i);
  MemWrite(2, 0, page, kPageBytes);
}

static void Probe(uint32_t which) {
  static const struct {
    uint8_t bar;
    uint64_t offset;
    uint32_t len;
  } kProbes[] = {{2, kPageBytes, 4}, {2, kBar2Bytes, 4}, {0, 0, 4}, {2, 0, kPageBytes + 1}};
  if (which >= sizeof(kProbes) / sizeof(kProbes[0])) return;
  Bytes got;
  if (MemRead(kProbes[which].bar, kProbes[which].offset, kProbes[which].len, &got)) {
    emulated_device_with_memory_list_u8_free(&got);
  }
}

static uint32_t Word(void) {
  Bytes got;
  if (!MemRead(2, sp.word_at, 4, &got)) return 0;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)got.ptr[i] << (8 * i);
  emulated_device_with_memory_list_u8_free(&got);
  return v;
}

static void SetWord(uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  MemWrite(2, sp.word_at, b, 4);
}

void exports_vfiobox_device_memory_areas_areas(
    exports_vfiobox_device_memory_areas_list_memory_area_t *ret) {
  vfiobox_device_types_memory_area_t *area = malloc(sizeof(*area));
  if (area == NULL) abort();
  *area = (vfiobox_device_types_memory_area_t){.bar = 2, .offset = 0, .length_bytes = kPageBytes};
  *ret = (exports_vfiobox_device_memory_areas_list_memory_area_t){area, 1};
}

void exports_vfiobox_device_device_describe(
    exports_vfiobox_device_device_device_description_t *ret) {
  vfiobox_device_types_bar_description_t *bars = malloc(2 * sizeof(*bars));
  if (bars == NULL) abort();
  bars[0] = (vfiobox_device_types_bar_description_t){
      .index = 0, .size_bytes = kBar0Bytes, .kind = VFIOBOX_DEVICE_TYPES_BAR_KIND_MEM32};
  bars[1] = (vfiobox_device_types_bar_description_t){
      .index = 2, .size_bytes = kBar2Bytes, .kind = VFIOBOX_DEVICE_TYPES_BAR_KIND_MEM32};
  *ret = (exports_vfiobox_device_device_device_description_t){
      .vendor_id = 0x1234,
      .device_id = 0x5350,
      .subsystem_vendor_id = 0x1af4,
      .subsystem_id = 0x1100,
      .class_code = 0x058000,  // memory controller, other
      .revision = 1,
      .bars = {bars, 2},
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
  if (bar == 2) {  // the trapped part (the host serves the area itself)
    *ret = 0x7a000000u | (uint32_t)offset;
    return true;
  }
  if (width != 4) return true;
  switch (offset) {
    case kRegId:
      *ret = kId;
      break;
    case kRegSum:
      *ret = Sum();
      break;
    case kRegStatus:
      *ret = sp.status;
      break;
    case kRegWordAt:
      *ret = sp.word_at;
      break;
    case kRegWord:
      *ret = Word();
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
    case kRegFill:
      Fill(v);
      break;
    case kRegProbe:
      Probe(v);
      break;
    case kRegWordAt:
      sp.word_at = v % kPageBytes & ~3u;
      break;
    case kRegWord:
      SetWord(v);
      break;
  }
  return true;
}

void exports_vfiobox_device_device_reset(void) { memset(&sp, 0, sizeof(sp)); }

void exports_vfiobox_device_device_timer(uint32_t id) {}

void exports_vfiobox_device_device_save_state(Bytes *ret) {
  uint32_t words[3] = {kStateMagic, sp.status, sp.word_at};
  uint8_t *out = malloc(sizeof(words));
  if (out == NULL) abort();
  memcpy(out, words, sizeof(words));  // wasm memory is little-endian
  *ret = (Bytes){out, sizeof(words)};
}

bool exports_vfiobox_device_device_load_state(Bytes *state,
                                              emulated_device_with_memory_string_t *err) {
  uint32_t words[3] = {0};
  bool ok = state->len == sizeof(words);
  if (ok) memcpy(words, state->ptr, sizeof(words));
  emulated_device_with_memory_list_u8_free(state);  // arguments are owned by the callee
  if (!ok || words[0] != kStateMagic) {
    emulated_device_with_memory_string_dup(err, "scratchpad: not a scratchpad saved state");
    return false;
  }
  sp.status = words[1];
  sp.word_at = words[2] % kPageBytes & ~3u;
  return true;
}

void exports_vfiobox_device_device_stream_ready(void) {}

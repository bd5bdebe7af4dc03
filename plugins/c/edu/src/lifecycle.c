// SPDX-License-Identifier: MIT
// describe(), save-state() and load-state() of the edu device model.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edu.h"

// hw/misc/edu.c edu_class_init; the subsystem IDs are QEMU's defaults for devices that set none
// (PCI_SUBVENDOR_ID_REDHAT_QUMRANET, PCI_SUBDEVICE_ID_QEMU).
static const uint16_t kVendorId = 0x1234;
static const uint16_t kDeviceId = 0x11e8;
static const uint16_t kSubsystemVendorId = 0x1af4;
static const uint16_t kSubsystemId = 0x1100;
static const uint32_t kClassCode = 0x00ff00;  // PCI_CLASS_OTHERS (0x00ff) << 8, prog-if 0.
static const uint8_t kRevision = 0x10;

// Saved state: magic, version, then the registers, the error count and the buffer, little-endian
// (wasm memory is little-endian on every host).
static const uint32_t kStateMagic = 0x31554445;  // "EDU1"
static const uint32_t kStateVersion = 1;
enum {
  kStateBytes = 2 * 4 + 4 * 4 + 4 * 8 + 4 + kEduDmaBufferBytes
};  // Header, u32s, u64s, errors.

void exports_vfiobox_device_device_describe(
    exports_vfiobox_device_device_device_description_t *ret) {
  // The glue's post-return frees the list, so it is heap-allocated like any returned list.
  vfiobox_device_types_bar_description_t *bar0 = malloc(sizeof(*bar0));
  if (bar0 == NULL) abort();
  *bar0 = (vfiobox_device_types_bar_description_t){
      .index = 0,
      .size_bytes = kEduBar0Bytes,
      .kind = VFIOBOX_DEVICE_TYPES_BAR_KIND_MEM32,
      .prefetchable = false,
  };
  *ret = (exports_vfiobox_device_device_device_description_t){
      .vendor_id = kVendorId,
      .device_id = kDeviceId,
      .subsystem_vendor_id = kSubsystemVendorId,
      .subsystem_id = kSubsystemId,
      .class_code = kClassCode,
      .revision = kRevision,
      .bars = {bar0, 1},
      // edu_realize: interrupt pin A, msi_init(pdev, 0, 1, true, false): one 64-bit MSI vector.
      .irqs = {.intx = {true, VFIOBOX_DEVICE_TYPES_INTX_PIN_A}, .msi_vectors = 1},
      .claimed_ranges = {NULL, 0},
  };
}

static uint8_t *Put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

static uint8_t *Put64(uint8_t *p, uint64_t v) { return Put32(Put32(p, (uint32_t)v), v >> 32); }

static const uint8_t *Get32(const uint8_t *p, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) *v |= (uint32_t)p[i] << (8 * i);
  return p + 4;
}

static const uint8_t *Get64(const uint8_t *p, uint64_t *v) {
  uint32_t lo, hi;
  p = Get32(Get32(p, &lo), &hi);
  *v = (uint64_t)hi << 32 | lo;
  return p;
}

void exports_vfiobox_device_device_save_state(emulated_device_list_u8_t *ret) {
  uint8_t *out = malloc(kStateBytes);
  if (out == NULL) abort();
  uint8_t *p = Put32(Put32(out, kStateMagic), kStateVersion);
  p = Put32(Put32(Put32(Put32(p, edu.liveness), edu.fact), edu.status), edu.irq_status);
  p = Put64(Put64(Put64(Put64(p, edu.dma_src), edu.dma_dst), edu.dma_cnt), edu.dma_cmd);
  p = Put32(p, edu.dma_errors);
  memcpy(p, edu.dma_buf, kEduDmaBufferBytes);
  *ret = (emulated_device_list_u8_t){out, kStateBytes};
}

static const char *ParseState(const uint8_t *p, size_t len, EduState *s) {
  uint32_t magic, version;
  if (len != kStateBytes) return "edu: saved state has the wrong size";
  p = Get32(Get32(p, &magic), &version);
  if (magic != kStateMagic) return "edu: not an edu saved state";
  if (version != kStateVersion) return "edu: unsupported saved-state version";
  p = Get32(Get32(Get32(Get32(p, &s->liveness), &s->fact), &s->status), &s->irq_status);
  p = Get64(Get64(Get64(Get64(p, &s->dma_src), &s->dma_dst), &s->dma_cnt), &s->dma_cmd);
  p = Get32(p, &s->dma_errors);
  memcpy(s->dma_buf, p, kEduDmaBufferBytes);
  return NULL;
}

bool exports_vfiobox_device_device_load_state(emulated_device_list_u8_t *state,
                                              emulated_device_string_t *err) {
  static EduState parsed;  // Static: 4 KiB is a lot for a 16 KiB stack.
  const char *problem = ParseState(state->ptr, state->len, &parsed);
  emulated_device_list_u8_free(state);  // Arguments are owned by the callee.
  if (problem != NULL) {
    emulated_device_string_dup(err, problem);
    return false;
  }
  edu = parsed;
  EduRearmTimers();
  return true;
}

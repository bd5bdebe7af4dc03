// SPDX-License-Identifier: MIT
// describe(), reset(), save-state() and load-state() of the serial16550 device model.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uart.h"

// QEMU's pci-serial (hw/char/serial-pci.c, docs/specs/pci-serial.rst): PCI_VENDOR_ID_REDHAT /
// PCI_DEVICE_ID_REDHAT_SERIAL, revision 1, class PCI_CLASS_COMMUNICATION_SERIAL with prog-if
// 0x02 (16550-compatible), QEMU's default subsystem IDs (PCI_SUBVENDOR_ID_REDHAT_QUMRANET /
// PCI_SUBDEVICE_ID_QEMU). Linux's 8250_pci binds it through its class-code entry
// (PCI_CLASS_COMMUNICATION_SERIAL << 8, mask 0xffff00, pbn_default) and serial_pci_guess_board,
// which wants prog-if <= 6 and exactly one I/O BAR: one port per 8 bytes of it.
static const uint16_t kVendorId = 0x1b36;
static const uint16_t kDeviceId = 0x0002;
static const uint16_t kSubsystemVendorId = 0x1af4;
static const uint16_t kSubsystemId = 0x1100;
static const uint32_t kClassCode = 0x070002;
static const uint8_t kRevision = 1;

// Saved state, version 1, little-endian: magic "S550", version, then the registers, flags, both
// FIFOs (count, then 16 bytes oldest first) and the two counters.
static const uint8_t kStateMagic[4] = {'S', '5', '5', '0'};
static const uint32_t kStateVersion = 1;
enum {
  kStateRegBytes = 8 + 2 + 1,            // Eight u8 registers, divisor, flags.
  kStateFifoBytes = 1 + kUartFifoBytes,  // Count, data.
  kStateBytes = 4 + 4 + kStateRegBytes + 2 * kStateFifoBytes + 2 * 4,
  kFlagThre = 0x01,
  kFlagTimeout = 0x02,
  kFlagStream = 0x04,
};

void exports_vfiobox_device_device_describe(
    exports_vfiobox_device_device_device_description_t *ret) {
  // The glue's post-return frees the list, so it is heap-allocated like any returned list.
  vfiobox_device_types_bar_description_t *bar0 = malloc(sizeof(*bar0));
  if (bar0 == NULL) abort();
  *bar0 = (vfiobox_device_types_bar_description_t){
      .index = 0,
      .size_bytes = kUartBar0Bytes,
      .kind = VFIOBOX_DEVICE_TYPES_BAR_KIND_IO,
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
      // serial_pci_realize: interrupt pin A (PCI_INTERRUPT_PIN = 1), no MSI or MSI-X.
      .irqs = {.intx = {true, VFIOBOX_DEVICE_TYPES_INTX_PIN_A}, .msi_vectors = 0},
      .claimed_ranges = {NULL, 0},
  };
}

// No device-specific config registers: the host emulates the whole header.
uint32_t exports_vfiobox_device_device_config_read(uint32_t offset, uint8_t width) {
  (void)offset;
  (void)width;
  return 0;
}

void exports_vfiobox_device_device_config_write(uint32_t offset, uint8_t width, uint32_t value) {
  (void)offset;
  (void)width;
  (void)value;
}

void exports_vfiobox_device_device_reset(void) {
  // The host has already cancelled our timers and lowered our interrupt (device.wit).
  uart = (UartState)UART_POWER_ON;
  UartAfterReset();
}

static uint8_t *Put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

static const uint8_t *Get32(const uint8_t *p, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) *v |= (uint32_t)p[i] << (8 * i);
  return p + 4;
}

static uint8_t *PutFifo(uint8_t *p, const UartFifo *f) {
  *p++ = f->count;
  for (int i = 0; i < kUartFifoBytes; i++) *p++ = f->data[(f->head + i) % kUartFifoBytes];
  return p;
}

static const uint8_t *GetFifo(const uint8_t *p, UartFifo *f) {
  f->count = *p++;
  f->head = 0;
  memcpy(f->data, p, kUartFifoBytes);
  return p + kUartFifoBytes;
}

void exports_vfiobox_device_device_save_state(emulated_device_list_u8_t *ret) {
  uint8_t *out = malloc(kStateBytes);
  if (out == NULL) abort();
  memcpy(out, kStateMagic, 4);
  uint8_t *p = Put32(out + 4, kStateVersion);
  const uint8_t regs[8] = {uart.ier, uart.lcr, uart.mcr, uart.line_errors,
                           uart.msr, uart.scr, uart.fcr, uart.rbr};
  memcpy(p, regs, 8);
  p += 8;
  *p++ = (uint8_t)uart.divisor;
  *p++ = (uint8_t)(uart.divisor >> 8);
  *p++ = (uart.thre_pending ? kFlagThre : 0) | (uart.timeout_pending ? kFlagTimeout : 0) |
         (uart.stream_pending ? kFlagStream : 0);
  p = PutFifo(PutFifo(p, &uart.rx), &uart.tx);
  Put32(Put32(p, uart.tx_dropped), uart.rx_overruns);
  *ret = (emulated_device_list_u8_t){out, kStateBytes};
}

static const uint8_t *ParseRegisters(const uint8_t *p, UartState *s) {
  s->ier = p[0] & kIerMask;
  s->lcr = p[1];
  s->mcr = p[2] & kMcrMask;
  s->line_errors = p[3] & kLsrOe;
  s->msr = p[4];
  s->scr = p[5];
  s->fcr = p[6] & (kFcrEnable | kFcrDmaMode | kFcrTriggerMask);
  s->rbr = p[7];
  s->divisor = (uint16_t)(p[8] | p[9] << 8);
  s->thre_pending = p[10] & kFlagThre;
  s->timeout_pending = p[10] & kFlagTimeout;
  s->stream_pending = p[10] & kFlagStream;
  return p + kStateRegBytes;
}

static const char *ParseState(const uint8_t *p, size_t len, UartState *s) {
  uint32_t version;
  if (len != kStateBytes) return "serial16550: saved state has the wrong size";
  if (memcmp(p, kStateMagic, 4) != 0) return "serial16550: not a serial16550 saved state";
  p = Get32(p + 4, &version);
  if (version != kStateVersion) return "serial16550: unsupported saved-state version";
  p = ParseRegisters(p, s);
  p = GetFifo(GetFifo(p, &s->rx), &s->tx);
  Get32(Get32(p, &s->tx_dropped), &s->rx_overruns);
  // A FIFO may not hold more than the mode it was saved in allows (1 byte with FIFOs off).
  uint8_t capacity = (s->fcr & kFcrEnable) ? kUartFifoBytes : 1;
  if (s->rx.count > capacity || s->tx.count > capacity) {
    return "serial16550: saved state has a FIFO count beyond its capacity";
  }
  return NULL;
}

bool exports_vfiobox_device_device_load_state(emulated_device_list_u8_t *state,
                                              emulated_device_string_t *err) {
  UartState parsed = {0};
  const char *problem = ParseState(state->ptr, state->len, &parsed);
  emulated_device_list_u8_free(state);  // Arguments are owned by the callee.
  if (problem != NULL) {
    emulated_device_string_dup(err, problem);
    return false;
  }
  uart = parsed;
  UartAfterLoad();
  return true;
}

// SPDX-License-Identifier: MIT
// QEMU's "edu" teaching device (hw/misc/edu.c, docs/specs/edu.rst) as a vfiobox device model.
// The register map is in ../README.md. Where this model differs from QEMU, a comment says why:
//  - QEMU computes the factorial on a thread and runs DMA from a 100 ms virtual-clock timer.
//    Plugin calls are synchronous, so both complete from a one-shot `clock` timer instead: the
//    guest still sees the busy bit until then, and an interrupt-driven driver (no polling) still
//    gets its interrupt, which completing "on the next status read" could not give it.
//  - An out-of-range DMA makes QEMU abort (hw_error); here the transfer is refused and logged,
//    and it completes (RUN clears, the interrupt fires if asked for) so a polling guest moves on.
//  - QEMU's edu has no reset handler; here reset() returns every register to power-on state.
#include "edu.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

// Register offsets in BAR0 (hw/misc/edu.c edu_mmio_read/edu_mmio_write).
enum {
  kRegIdent = 0x00,
  kRegLiveness = 0x04,
  kRegFactorial = 0x08,
  kRegStatus = 0x20,
  kRegIrqStatus = 0x24,
  kRegIrqRaise = 0x60,
  kRegIrqAck = 0x64,
  kRegDmaSrc = 0x80,
  kRegDmaDst = 0x88,
  kRegDmaCount = 0x90,
  kRegDmaCmd = 0x98,
};

static const uint32_t kIdent = 0x010000ed;  // Major 1, minor 0, "ed".
static const uint32_t kFactIrq = 0x00000001;
static const uint32_t kDmaIrq = 0x00000100;
static const uint64_t kDmaCmdIrq = 0x4;
static const uint64_t kDmaCmdToRam = 0x2;  // Direction bit: 0 = RAM -> edu, 1 = edu -> RAM.

// Delays of the one-shot timers: long enough that the guest can see the busy bit (QEMU's edu
// wants drivers to wait on it), short enough that a polling driver barely notices.
static const uint64_t kFactorialDelayNs = 10 * 1000;
static const uint64_t kDmaDelayNs = 10 * 1000;

EduState edu;

static void Log(vfiobox_device_types_log_level_t level, const char *message) {
  emulated_device_string_t text = {(uint8_t *)message, strlen(message)};
  vfiobox_device_log_log(level, &text);
}

// Appends "0x<hex>" of value to buf at *len (buf must have 19 free bytes).
static void AppendHex(char *buf, size_t *len, uint64_t value) {
  static const char kDigits[] = "0123456789abcdef";
  int shift = 60;
  while (shift > 0 && ((value >> shift) & 0xf) == 0) shift -= 4;
  buf[(*len)++] = '0';
  buf[(*len)++] = 'x';
  for (; shift >= 0; shift -= 4) buf[(*len)++] = kDigits[(value >> shift) & 0xf];
}

// Logs "<what> <value> <value2>" at warn level, for guest errors worth a line.
static void LogGuestError(const char *what, uint64_t value, uint64_t value2) {
  char buf[128];
  size_t len = strlen(what);
  if (len > sizeof(buf) - 41) len = sizeof(buf) - 41;
  memcpy(buf, what, len);
  buf[len++] = ' ';
  AppendHex(buf, &len, value);
  buf[len++] = ' ';
  AppendHex(buf, &len, value2);
  buf[len] = '\0';
  Log(VFIOBOX_DEVICE_TYPES_LOG_LEVEL_WARN, buf);
}

// edu_raise_irq: latch the cause, then signal vector 0 (MSI if enabled, else INTx: the host
// picks, as QEMU's msi_enabled() check does).
static void RaiseIrq(uint32_t cause) {
  edu.irq_status |= cause;
  if (edu.irq_status == 0) return;
  vfiobox_device_irq_irq_error_t err;
  if (!vfiobox_device_irq_raise(0, &err)) LogGuestError("edu: irq raise failed, error", err, 0);
}

// edu_lower_irq: clear causes; INTx drops when none is left (a no-op for MSI on the host side).
static void LowerIrq(uint32_t cause) {
  edu.irq_status &= ~cause;
  if (edu.irq_status != 0) return;
  vfiobox_device_irq_irq_error_t err;
  if (!vfiobox_device_irq_lower(0, &err)) LogGuestError("edu: irq lower failed, error", err, 0);
}

static void StartFactorial(uint32_t n) {
  if (edu.status & kEduStatusComputing) return;  // QEMU ignores writes while computing.
  edu.fact = n;
  edu.status |= kEduStatusComputing;
  vfiobox_device_clock_set_timer(kEduTimerFactorial, kFactorialDelayNs);
}

// edu_fact_thread's loop body; u32 arithmetic wraps exactly as QEMU's does (13! and up).
static void FinishFactorial(void) {
  if (!(edu.status & kEduStatusComputing)) return;
  uint32_t n = edu.fact, result = 1;
  while (n > 0) result *= n--;
  edu.fact = result;
  edu.status &= ~kEduStatusComputing;
  if (edu.status & kEduStatusIrqFact) RaiseIrq(kFactIrq);
}

// edu_check_range: [start, start + size) must lie inside the edu buffer, without wrapping.
static bool InDmaBuffer(uint64_t start, uint64_t size) {
  uint64_t end = start + size;
  return end >= start && start >= kEduDmaBufferAddress &&
         end <= kEduDmaBufferAddress + kEduDmaBufferBytes;
}

// Moves the bytes of one DMA command; false if it was refused or the host failed it.
static bool TransferDma(void) {
  bool to_ram = edu.dma_cmd & kDmaCmdToRam;
  uint64_t edu_address = to_ram ? edu.dma_src : edu.dma_dst;
  uint64_t iova = (to_ram ? edu.dma_dst : edu.dma_src) & kEduDmaMask;  // edu_clamp_addr
  if (!InDmaBuffer(edu_address, edu.dma_cnt)) {
    LogGuestError("edu: DMA out of the edu buffer, refused: address, count", edu_address,
                  edu.dma_cnt);
    return false;
  }
  if (edu.dma_cnt == 0) return true;
  uint8_t *buf = edu.dma_buf + (edu_address - kEduDmaBufferAddress);
  uint32_t count = (uint32_t)edu.dma_cnt;  // At most kEduDmaBufferBytes after the check.
  vfiobox_device_dma_dma_error_t err;
  if (to_ram) {
    emulated_device_list_u8_t data = {buf, count};
    if (vfiobox_device_dma_write(iova, &data, &err)) return true;
  } else {
    emulated_device_list_u8_t data;
    if (vfiobox_device_dma_read(iova, count, &data, &err)) {
      memcpy(buf, data.ptr, data.len < count ? data.len : count);
      emulated_device_list_u8_free(&data);
      return true;
    }
  }
  LogGuestError("edu: DMA failed: iova, error", iova, err);
  return false;
}

// edu_dma_timer.
static void FinishDma(void) {
  if (!(edu.dma_cmd & kEduDmaCmdRun)) return;
  if (!TransferDma()) edu.dma_errors++;
  edu.dma_cmd &= ~kEduDmaCmdRun;
  if (edu.dma_cmd & kDmaCmdIrq) RaiseIrq(kDmaIrq);
}

static uint64_t ReadRegister(uint64_t offset) {
  switch (offset) {
    case kRegIdent:
      return kIdent;
    case kRegLiveness:
      return edu.liveness;
    case kRegFactorial:
      return edu.fact;
    case kRegStatus:
      return edu.status;
    case kRegIrqStatus:
      return edu.irq_status;
    case kRegDmaSrc:
      return edu.dma_src;
    case kRegDmaDst:
      return edu.dma_dst;
    case kRegDmaCount:
      return edu.dma_cnt;
    case kRegDmaCmd:
      return edu.dma_cmd;
    default:
      return ~0ull;
  }
}

// dma_rw(write = true): DMA registers are frozen while a transfer runs.
static void WriteDmaRegister(uint64_t *reg, uint64_t value) {
  if (!(edu.dma_cmd & kEduDmaCmdRun)) *reg = value;
}

static void WriteRegister(uint64_t offset, uint64_t value) {
  switch (offset) {
    case kRegLiveness:
      edu.liveness = ~(uint32_t)value;
      break;
    case kRegFactorial:
      StartFactorial((uint32_t)value);
      break;
    case kRegStatus:
      edu.status = (edu.status & ~kEduStatusIrqFact) | ((uint32_t)value & kEduStatusIrqFact);
      break;
    case kRegIrqRaise:
      RaiseIrq((uint32_t)value);
      break;
    case kRegIrqAck:
      LowerIrq((uint32_t)value);
      break;
    case kRegDmaSrc:
      WriteDmaRegister(&edu.dma_src, value);
      break;
    case kRegDmaDst:
      WriteDmaRegister(&edu.dma_dst, value);
      break;
    case kRegDmaCount:
      WriteDmaRegister(&edu.dma_cnt, value);
      break;
    case kRegDmaCmd:
      if (!(value & kEduDmaCmdRun) || (edu.dma_cmd & kEduDmaCmdRun)) break;
      edu.dma_cmd = value;
      vfiobox_device_clock_set_timer(kEduTimerDma, kDmaDelayNs);
      break;
    default:
      break;  // Read-only or unimplemented: ignored, as in QEMU.
  }
}

// Common checks of region-read/region-write. QEMU's edu_mmio_ops accept 4 bytes below 0x80 and
// 4 or 8 from 0x80 up; other widths read all-ones and ignore writes (edu_mmio_read's first lines).
static bool CheckAccess(uint8_t bar, uint64_t offset, uint8_t width,
                        exports_vfiobox_device_device_access_error_t *err, bool *edu_width) {
  if (width != 1 && width != 2 && width != 4 && width != 8) {
    *err = VFIOBOX_DEVICE_TYPES_ACCESS_ERROR_INVALID_WIDTH;
    return false;
  }
  if (offset % width != 0) {
    *err = VFIOBOX_DEVICE_TYPES_ACCESS_ERROR_INVALID_WIDTH;
    return false;
  }
  if (bar != 0 || offset >= kEduBar0Bytes || kEduBar0Bytes - offset < width) {
    *err = VFIOBOX_DEVICE_TYPES_ACCESS_ERROR_OUT_OF_RANGE;
    return false;
  }
  *edu_width = offset < 0x80 ? width == 4 : (width == 4 || width == 8);
  return true;
}

bool exports_vfiobox_device_device_region_read(uint8_t bar, uint64_t offset, uint8_t width,
                                               uint64_t *ret,
                                               exports_vfiobox_device_device_access_error_t *err) {
  bool edu_width;
  if (!CheckAccess(bar, offset, width, err, &edu_width)) return false;
  uint64_t value = edu_width ? ReadRegister(offset) : ~0ull;
  *ret = width == 8 ? value : value & ((1ull << (width * 8)) - 1);
  return true;
}

bool exports_vfiobox_device_device_region_write(uint8_t bar, uint64_t offset, uint8_t width,
                                                uint64_t value,
                                                exports_vfiobox_device_device_access_error_t *err) {
  bool edu_width;
  if (!CheckAccess(bar, offset, width, err, &edu_width)) return false;
  if (edu_width) WriteRegister(offset, width == 8 ? value : value & 0xffffffffull);
  return true;
}

// edu has no device-specific config registers: the host emulates the whole header and the MSI
// capability, so whatever reaches the plugin reads as zero and writes are ignored.
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
  memset(&edu, 0, sizeof(edu));
}

void exports_vfiobox_device_device_timer(uint32_t id) {
  switch (id) {
    case kEduTimerFactorial:
      FinishFactorial();
      break;
    case kEduTimerDma:
      FinishDma();
      break;
    default:
      LogGuestError("edu: unknown timer id", id, 0);
      break;
  }
}

// edu has no stream: nothing to pull.
void exports_vfiobox_device_device_stream_ready(void) {}

// Re-arms the timers a restored state needs (the host does not carry timers across a reload).
void EduRearmTimers(void) {
  if (edu.status & kEduStatusComputing) {
    vfiobox_device_clock_set_timer(kEduTimerFactorial, kFactorialDelayNs);
  }
  if (edu.dma_cmd & kEduDmaCmdRun) vfiobox_device_clock_set_timer(kEduTimerDma, kDmaDelayNs);
}

// SPDX-License-Identifier: MIT
// A PCI 16550A UART (National PC16550D datasheet; Linux drivers/tty/serial/8250/8250_port.c is
// the driver it must satisfy) as a vfiobox device model. The register map and every difference
// from a real 16550A are in ../README.md; in short:
//  - The line is the host's byte stream, not a wire: a THR write is handed to byte-stream.write
//    at once (no baud-rate pacing), and received bytes are pulled from byte-stream.read only as
//    far as the RX FIFO has room, so the stream never overruns us. Bytes the host refuses stay
//    in the TX FIFO (THRE clear) and are retried on the next access or a retry timer.
//  - The character timeout is a `clock` timer of four character times at the programmed baud
//    rate, re-armed whenever a byte enters or leaves the RX FIFO.
//  - No parity, framing or break: BI, FE, PE and LSR bit 7 always read 0.
#include "uart.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

UartState uart = UART_POWER_ON;

// What we last told the host about INTx: lowered, raised, or unknown (after load-state).
enum { kLineLow = 0, kLineHigh = 1, kLineUnknown = 2 };
static uint8_t irq_line = kLineLow;

static const uint64_t kTxRetryNs = 1000 * 1000;  // 1 ms: the host's buffer is full; no hurry.
static const uint64_t kBaseClockHz = 115200;     // 1.8432 MHz / 16 (8250_pci pbn_default).
static const uint8_t kTriggerBytes[4] = {1, 4, 8, 14};  // FCR bits 7:6 (PC16550D Table V).

static bool warned_tx_drop;  // One line per instance is enough; the counter has the rest.
static bool warned_irq;

static void Warn(bool *once, const char *message) {
  if (*once) return;
  *once = true;
  emulated_device_string_t text = {(uint8_t *)message, strlen(message)};
  vfiobox_device_log_log(VFIOBOX_DEVICE_TYPES_LOG_LEVEL_WARN, &text);
}

static bool FifoEnabled(void) { return uart.fcr & kFcrEnable; }

uint8_t UartFifoCapacity(void) { return FifoEnabled() ? kUartFifoBytes : 1; }

static void FifoPush(UartFifo *f, uint8_t byte) {
  f->data[(f->head + f->count) % kUartFifoBytes] = byte;
  f->count++;
}

static uint8_t FifoPop(UartFifo *f) {
  uint8_t byte = f->data[f->head];
  f->head = (f->head + 1) % kUartFifoBytes;
  f->count--;
  return byte;
}

// Nanoseconds one character takes on the line: start bit, 5-8 data bits, parity, and 1, 1.5
// (5-bit words) or 2 stop bits (LCR bits 0-3), at 115200 / divisor baud. A divisor of 0 counts
// as 65536, the largest the 16-bit counter can divide by.
static uint64_t CharTimeNs(void) {
  uint64_t divisor = uart.divisor ? uart.divisor : 65536;
  uint64_t data_bits = 5 + (uart.lcr & 0x03);
  uint64_t half_bits = 2 * (1 + data_bits + ((uart.lcr & 0x08) ? 1 : 0));
  half_bits += (uart.lcr & 0x04) ? (data_bits == 5 ? 3 : 4) : 2;
  return half_bits * divisor * 1000000000ull / (2 * kBaseClockHz);
}

// (Re)starts the four-character-time receive timeout (PC16550D "FIFO Interrupt Mode
// Operation"): any byte in or out restarts it; it only matters while the RX FIFO holds data.
static void RestartCharTimeout(void) {
  uart.timeout_pending = false;
  if (FifoEnabled() && uart.rx.count > 0) {
    vfiobox_device_clock_set_timer(kTimerCharTimeout, 4 * CharTimeNs());
  } else {
    vfiobox_device_clock_cancel_timer(kTimerCharTimeout);
  }
}

// A byte reached the receiver (from the stream or the loopback path). 16550A overrun rules: in
// FIFO mode a full FIFO keeps its bytes and the new one is lost; in 16450 mode it overwrites RBR.
static void Receive(uint8_t byte) {
  if (uart.rx.count >= UartFifoCapacity()) {
    uart.line_errors |= kLsrOe;
    uart.rx_overruns++;
    if (FifoEnabled()) return;
    uart.rx.count = 0;
  }
  FifoPush(&uart.rx, byte);
}

static bool RxAtTrigger(void) {
  if (!FifoEnabled()) return uart.rx.count > 0;
  return uart.rx.count >= kTriggerBytes[uart.fcr >> 6];
}

// Highest-priority pending interrupt, as IIR bits 0-3 (PC16550D Table IV): receiver line status,
// received data at the trigger level, character timeout, THR empty, modem status.
static uint8_t PendingIid(void) {
  if ((uart.ier & kIerRlsi) && (uart.line_errors & kLsrOe)) return kIirRlsi;
  if (uart.ier & kIerRdi) {
    if (RxAtTrigger()) return kIirRdi;
    if (FifoEnabled() && uart.timeout_pending && uart.rx.count > 0) return kIirTimeout;
  }
  if ((uart.ier & kIerThri) && uart.thre_pending) return kIirThri;
  if ((uart.ier & kIerMsi) && (uart.msr & kMsrDeltaMask)) return kIirMsi;
  return kIirNoInt;
}

// INTx follows "an interrupt is pending and OUT2 is set": OUT2 gates the UART's interrupt
// output on PC-compatible boards, and Linux sets it whenever the port uses an IRQ
// (8250_port.c serial8250_do_startup: TIOCM_OUT2). Only level changes reach the host.
static void UpdateIrq(void) {
  uint8_t level = (PendingIid() != kIirNoInt && (uart.mcr & kMcrOut2)) ? kLineHigh : kLineLow;
  if (level == irq_line) return;
  vfiobox_device_irq_irq_error_t err;
  bool ok =
      level == kLineHigh ? vfiobox_device_irq_raise(0, &err) : vfiobox_device_irq_lower(0, &err);
  if (!ok) Warn(&warned_irq, "serial16550: irq raise/lower refused by the host");
  irq_line = level;
}

// Pulls from the host's stream as far as the receiver has room. Not in loopback: there the
// serial input is disconnected from the receiver (PC16550D MCR bit 4).
static void PullStream(void) {
  if (!uart.stream_pending || (uart.mcr & kMcrLoop)) return;
  uint32_t room = UartFifoCapacity() - uart.rx.count;
  if (room == 0) return;
  emulated_device_list_u8_t data;
  vfiobox_device_byte_stream_read(room, &data);
  for (size_t i = 0; i < data.len; i++) Receive(data.ptr[i]);
  if (data.len < room) uart.stream_pending = false;  // The host had no more.
  bool got = data.len > 0;
  emulated_device_list_u8_free(&data);
  if (got) RestartCharTimeout();
}

// Sends what the TX FIFO holds: to the receiver in loopback, else to the host, which may take
// only part of it. When the FIFO runs empty the THRE interrupt latches (its trigger is the
// transition to empty); a remainder is retried later, never waited for.
static void DrainTx(void) {
  if (uart.tx.count == 0) return;
  if (uart.mcr & kMcrLoop) {
    while (uart.tx.count > 0) Receive(FifoPop(&uart.tx));
    RestartCharTimeout();
  } else {
    uint8_t linear[kUartFifoBytes];
    uint8_t n = uart.tx.count;
    for (uint8_t i = 0; i < n; i++) linear[i] = uart.tx.data[(uart.tx.head + i) % kUartFifoBytes];
    emulated_device_list_u8_t data = {linear, n};
    uint32_t taken = vfiobox_device_byte_stream_write(&data);
    for (uint32_t i = 0; i < taken && uart.tx.count > 0; i++) FifoPop(&uart.tx);
  }
  if (uart.tx.count == 0) {
    uart.thre_pending = true;
    vfiobox_device_clock_cancel_timer(kTimerTxRetry);
  } else {
    vfiobox_device_clock_set_timer(kTimerTxRetry, kTxRetryNs);
  }
}

static void ClearRx(void) {
  uart.rx.head = uart.rx.count = 0;
  RestartCharTimeout();
}

static void ClearTx(void) {
  if (uart.tx.count > 0) uart.thre_pending = true;  // THR became empty.
  uart.tx.head = uart.tx.count = 0;
  vfiobox_device_clock_cancel_timer(kTimerTxRetry);
}

// Modem inputs as the MSR sees them: the line's, or in loopback the MCR outputs wired back
// (DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD; Linux's autoconfig loopback test).
static uint8_t ModemInputs(void) {
  if (!(uart.mcr & kMcrLoop)) return kMsrLineInputs;
  uint8_t in = 0;
  if (uart.mcr & kMcrRts) in |= kMsrCts;
  if (uart.mcr & kMcrDtr) in |= kMsrDsr;
  if (uart.mcr & kMcrOut1) in |= kMsrRi;
  if (uart.mcr & kMcrOut2) in |= kMsrDcd;
  return in;
}

// Latches MSR deltas: DCTS, DDSR, DDCD on any change; TERI only when RI goes from on to off.
static void SetModemInputs(uint8_t in) {
  uint8_t old = uart.msr & ~kMsrDeltaMask;
  uint8_t changed = old ^ in;
  uint8_t deltas = 0;
  if (changed & kMsrCts) deltas |= 0x01;
  if (changed & kMsrDsr) deltas |= 0x02;
  if ((old & kMsrRi) && !(in & kMsrRi)) deltas |= 0x04;
  if (changed & kMsrDcd) deltas |= 0x08;
  uart.msr = in | ((uart.msr | deltas) & kMsrDeltaMask);
}

static uint8_t ReadRbr(void) {
  if (uart.rx.count > 0) uart.rbr = FifoPop(&uart.rx);
  PullStream();  // Refill as the guest drains.
  RestartCharTimeout();
  return uart.rbr;
}

// Reading an IIR that reports THRE clears that interrupt (PC16550D Table IV).
static uint8_t ReadIir(void) {
  uint8_t iid = PendingIid();
  if (iid == kIirThri) uart.thre_pending = false;
  return iid | (FifoEnabled() ? kIirFifoEnabled : 0);
}

static uint8_t ReadLsr(void) {
  uint8_t lsr = uart.line_errors;
  if (uart.rx.count > 0) lsr |= kLsrDr;
  if (uart.tx.count == 0) lsr |= kLsrThre | kLsrTemt;  // No shift register to wait for.
  uart.line_errors = 0;  // Reading LSR clears OE and with it the line status interrupt.
  return lsr;
}

static uint8_t ReadMsr(void) {
  uint8_t msr = uart.msr;
  uart.msr &= ~kMsrDeltaMask;
  return msr;
}

static uint8_t ReadRegister(uint64_t offset) {
  bool dlab = uart.lcr & kLcrDlab;
  switch (offset) {
    case kRegRbrThrDll:
      return dlab ? (uint8_t)uart.divisor : ReadRbr();
    case kRegIerDlm:
      return dlab ? (uint8_t)(uart.divisor >> 8) : uart.ier;
    case kRegIirFcr:
      return ReadIir();
    case kRegLcr:
      return uart.lcr;
    case kRegMcr:
      return uart.mcr;
    case kRegLsr:
      return ReadLsr();
    case kRegMsr:
      return ReadMsr();
    default:
      return uart.scr;
  }
}

static void WriteThr(uint8_t byte) {
  uart.thre_pending = false;  // Writing THR clears the THRE interrupt...
  if (uart.tx.count < UartFifoCapacity()) {
    FifoPush(&uart.tx, byte);
  } else {
    uart.tx_dropped++;  // As on hardware, a write to a full FIFO is lost.
    Warn(&warned_tx_drop, "serial16550: THR written while the TX FIFO was full, byte dropped");
  }
  DrainTx();  // ...and sending it empties THR again, which latches it anew.
}

// Writing IER with ETBEI set while THR is empty (re-)arms the THRE interrupt; Linux's THRE test
// in serial8250_do_startup and its start_tx depend on that. Clearing ETBEI drops it.
static void WriteIer(uint8_t value) {
  uart.ier = value & kIerMask;
  uart.thre_pending = (uart.ier & kIerThri) && uart.tx.count == 0;
}

// FCR (PC16550D Table I): changing bit 0 clears both FIFOs; with bit 0 clear no other bit is
// programmed; bits 1 and 2 clear one FIFO each and self-clear. Bit 5 (16750 64-byte FIFO) is
// not kept, so Linux's 16750 probe sees a 16550A.
static void WriteFcr(uint8_t value) {
  if ((value ^ uart.fcr) & kFcrEnable) {
    uart.fcr = value & kFcrEnable;  // Capacity changes before the FIFOs are cleared.
    ClearRx();
    ClearTx();
  }
  if (!(value & kFcrEnable)) {
    uart.fcr = 0;
  } else {
    if (value & kFcrClearRx) ClearRx();
    if (value & kFcrClearTx) ClearTx();
    uart.fcr = value & (kFcrEnable | kFcrDmaMode | kFcrTriggerMask);
  }
  RestartCharTimeout();
  PullStream();
}

static void WriteMcr(uint8_t value) {
  bool was_loop = uart.mcr & kMcrLoop;
  uart.mcr = value & kMcrMask;
  SetModemInputs(ModemInputs());
  if (was_loop && !(uart.mcr & kMcrLoop)) PullStream();  // Input reconnected.
}

static void WriteRegister(uint64_t offset, uint8_t value) {
  bool dlab = uart.lcr & kLcrDlab;
  switch (offset) {
    case kRegRbrThrDll:
      if (dlab) {
        uart.divisor = (uart.divisor & 0xff00) | value;
      } else {
        WriteThr(value);
      }
      break;
    case kRegIerDlm:
      if (dlab) {
        uart.divisor = (uint16_t)((uart.divisor & 0x00ff) | value << 8);
      } else {
        WriteIer(value);
      }
      break;
    case kRegIirFcr:
      WriteFcr(value);
      break;
    case kRegLcr:
      uart.lcr = value;
      break;
    case kRegMcr:
      WriteMcr(value);
      break;
    case kRegScr:
      uart.scr = value;
      break;
    default:
      break;  // LSR and MSR writes are factory-test only on a 16550; ignored, as in QEMU.
  }
}

// One-byte registers only: a 16550 has no wider ones. Accesses outside the 8-byte BAR (the host
// checks already; hostile input is normal) are out-of-range.
static bool CheckAccess(uint8_t bar, uint64_t offset, uint8_t width,
                        exports_vfiobox_device_device_access_error_t *err) {
  if (width != 1) {
    *err = VFIOBOX_DEVICE_TYPES_ACCESS_ERROR_INVALID_WIDTH;
    return false;
  }
  if (bar != 0 || offset >= kUartBar0Bytes) {
    *err = VFIOBOX_DEVICE_TYPES_ACCESS_ERROR_OUT_OF_RANGE;
    return false;
  }
  DrainTx();  // Retry what the host refused earlier: every access is a chance.
  return true;
}

bool exports_vfiobox_device_device_region_read(uint8_t bar, uint64_t offset, uint8_t width,
                                               uint64_t *ret,
                                               exports_vfiobox_device_device_access_error_t *err) {
  if (!CheckAccess(bar, offset, width, err)) return false;
  *ret = ReadRegister(offset);
  UpdateIrq();
  return true;
}

bool exports_vfiobox_device_device_region_write(uint8_t bar, uint64_t offset, uint8_t width,
                                                uint64_t value,
                                                exports_vfiobox_device_device_access_error_t *err) {
  if (!CheckAccess(bar, offset, width, err)) return false;
  WriteRegister(offset, (uint8_t)value);
  UpdateIrq();
  return true;
}

void exports_vfiobox_device_device_timer(uint32_t id) {
  if (id == kTimerCharTimeout) {
    // The timer is moved on every byte in or out, so firing means four quiet character times.
    uart.timeout_pending = FifoEnabled() && uart.rx.count > 0;
  } else if (id == kTimerTxRetry) {
    DrainTx();
  }
  UpdateIrq();
}

void exports_vfiobox_device_device_stream_ready(void) {
  uart.stream_pending = true;
  PullStream();
  UpdateIrq();
}

void UartAfterReset(void) {
  irq_line = kLineLow;  // The host lowered it before reset() (device.wit).
  PullStream();
}

void UartAfterLoad(void) {
  irq_line = kLineUnknown;  // Whatever the host has, drive it to what the state says.
  if (uart.tx.count > 0) vfiobox_device_clock_set_timer(kTimerTxRetry, kTxRetryNs);
  if (FifoEnabled() && uart.rx.count > 0 && !uart.timeout_pending) {
    vfiobox_device_clock_set_timer(kTimerCharTimeout, 4 * CharTimeNs());
  }
  UpdateIrq();
}

// SPDX-License-Identifier: MIT
// State of the serial16550 device model, shared by uart.c (registers, FIFOs, interrupts, timers,
// stream) and lifecycle.c (describe, reset, save and load). Register and bit names follow the
// PC16550D datasheet and Linux's include/uapi/linux/serial_reg.h.
#ifndef VFIOBOX_PLUGINS_SERIAL16550_UART_H_
#define VFIOBOX_PLUGINS_SERIAL16550_UART_H_

#include <stdbool.h>
#include <stdint.h>

#include "emulated_device.h"  // gen/: wit-bindgen output for world emulated-device.

enum {
  kUartBar0Bytes = 8,      // BAR0: 8 bytes of I/O space, one register per byte.
  kUartFifoBytes = 16,     // 16550A receive and transmit FIFO depth.
  kUartDivisorReset = 12,  // 9600 baud from the 1.8432 MHz clock, as QEMU's serial_reset.
  kTimerCharTimeout = 1,   // clock timer ids.
  kTimerTxRetry = 2,
};

// Register offsets in BAR0 (serial_reg.h UART_*). DLAB is LCR bit 7.
enum {
  kRegRbrThrDll = 0,  // RBR (read), THR (write); DLL when DLAB = 1.
  kRegIerDlm = 1,     // IER; DLM when DLAB = 1.
  kRegIirFcr = 2,     // IIR (read), FCR (write).
  kRegLcr = 3,
  kRegMcr = 4,
  kRegLsr = 5,
  kRegMsr = 6,
  kRegScr = 7,
};

enum {
  kIerRdi = 0x01,   // ERBFI: received data available (and character timeout).
  kIerThri = 0x02,  // ETBEI: transmitter holding register empty.
  kIerRlsi = 0x04,  // ELSI: receiver line status.
  kIerMsi = 0x08,   // EDSSI: modem status.
  kIerMask = 0x0f,  // Bits 4-7 read as zero on a 16550A (Linux's IER and UUE probes rely on it).

  kIirNoInt = 0x01,
  kIirMsi = 0x00,
  kIirThri = 0x02,
  kIirRdi = 0x04,
  kIirRlsi = 0x06,
  kIirTimeout = 0x0c,
  kIirFifoEnabled = 0xc0,  // Bits 6-7 = 11: FIFOs enabled (the 16550A signature).

  kFcrEnable = 0x01,
  kFcrClearRx = 0x02,
  kFcrClearTx = 0x04,
  kFcrDmaMode = 0x08,
  kFcrTriggerMask = 0xc0,

  kLcrDlab = 0x80,

  kMcrDtr = 0x01,
  kMcrRts = 0x02,
  kMcrOut1 = 0x04,
  kMcrOut2 = 0x08,  // Gates the interrupt line on PC-compatible boards.
  kMcrLoop = 0x10,
  kMcrMask = 0x1f,  // Bits 5-7 read as zero on a 16550A.

  kLsrDr = 0x01,
  kLsrOe = 0x02,
  kLsrThre = 0x20,
  kLsrTemt = 0x40,

  kMsrDeltaMask = 0x0f,  // DCTS, DDSR, TERI, DDCD.
  kMsrCts = 0x10,
  kMsrDsr = 0x20,
  kMsrRi = 0x40,
  kMsrDcd = 0x80,
  // The far end of the byte stream is a connected peer: CTS, DSR and DCD asserted, no ring
  // (QEMU's serial_reset does the same for a backend without modem lines).
  kMsrLineInputs = kMsrCts | kMsrDsr | kMsrDcd,
};

typedef struct UartFifo {
  uint8_t data[kUartFifoBytes];
  uint8_t head;   // Index of the oldest byte.
  uint8_t count;  // Bytes held, at most the current capacity (16, or 1 with FIFOs disabled).
} UartFifo;

typedef struct UartState {
  uint8_t ier;
  uint8_t lcr;
  uint8_t mcr;
  uint8_t line_errors;  // LSR error bits latched until an LSR read: only OE is ever set.
  uint8_t msr;          // Modem inputs (bits 4-7) and their deltas (bits 0-3).
  uint8_t scr;
  uint8_t fcr;  // Write-only register: FIFO enable, DMA mode and trigger bits as written.
  uint8_t rbr;  // Last byte the guest read: what a read of an empty receiver returns.
  uint16_t divisor;
  bool thre_pending;     // THRE interrupt latched (see uart.c WriteIer/ReadIir/WriteThr).
  bool timeout_pending;  // Character timeout latched by the timer, cleared by an RBR read.
  bool stream_pending;   // The host may hold bytes for us: pull when there is room.
  UartFifo rx;
  UartFifo tx;           // Bytes the host refused so far; empty whenever the host keeps up.
  uint32_t tx_dropped;   // Not a register: THR writes lost because the TX FIFO was full.
  uint32_t rx_overruns;  // Not a register: received bytes lost to overrun (LSR.OE).
} UartState;

// Power-on values (PC16550D "Reset" table; the divisor as QEMU's serial_reset).
#define UART_POWER_ON \
  { .msr = kMsrLineInputs, .divisor = kUartDivisorReset, .stream_pending = true, }

extern UartState uart;

// Called after load-state replaced `uart`: re-arms timers, re-drives the interrupt line.
void UartAfterLoad(void);
// Called by reset() after it returned `uart` to power-on state.
void UartAfterReset(void);
// Capacity of each FIFO in the current mode: 16, or 1 in 16450 (FIFOs disabled) mode.
uint8_t UartFifoCapacity(void);

#endif  // VFIOBOX_PLUGINS_SERIAL16550_UART_H_

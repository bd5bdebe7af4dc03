// SPDX-License-Identifier: MIT
// State of the edu device model, shared by edu.c (registers, timers) and lifecycle.c (describe,
// save and load).
#ifndef VFIOBOX_PLUGINS_EDU_EDU_H_
#define VFIOBOX_PLUGINS_EDU_EDU_H_

#include <stdint.h>

#include "emulated_device.h"  // gen/: wit-bindgen output for world emulated-device.

enum {
  kEduBar0Bytes = 1 << 20,         // BAR0: 1 MiB of 32-bit, non-prefetchable MMIO.
  kEduDmaBufferAddress = 0x40000,  // Device address of the DMA buffer (QEMU DMA_START).
  kEduDmaBufferBytes = 4096,       // QEMU DMA_SIZE.
  kEduStatusComputing = 0x01,      // Status bit 0: factorial in progress (read-only).
  kEduStatusIrqFact = 0x80,        // Status bit 7: raise interrupt 0x1 when it is done.
  kEduDmaCmdRun = 0x1,             // DMA command bit 0: start; clears when done.
  kEduTimerFactorial = 1,          // clock timer ids.
  kEduTimerDma = 2,
};

// Mask applied to the guest-memory side of a DMA (QEMU edu_clamp_addr). QEMU's default is 28 bits
// (edu_instance_init: (1UL << 28) - 1), which the Linux edu drivers match with DMA_BIT_MASK(28).
// The lab's edu runs with dma_mask=0xffffffffffffffff; build with
// `make CPPFLAGS=-DEDU_DMA_MASK=0xffffffffffffffffull` to model that one instead.
#ifndef EDU_DMA_MASK
#define EDU_DMA_MASK 0x0fffffffull
#endif
static const uint64_t kEduDmaMask = EDU_DMA_MASK;

typedef struct EduState {
  uint32_t liveness;    // 0x04: holds the complement of the last value written (QEMU addr4).
  uint32_t fact;        // 0x08: factorial operand, then result.
  uint32_t status;      // 0x20.
  uint32_t irq_status;  // 0x24: latched interrupt causes.
  uint64_t dma_src;     // 0x80.
  uint64_t dma_dst;     // 0x88.
  uint64_t dma_cnt;     // 0x90.
  uint64_t dma_cmd;     // 0x98.
  uint32_t dma_errors;  // Not a register: transfers refused or failed (QEMU would abort).
  uint8_t dma_buf[kEduDmaBufferBytes];
} EduState;

extern EduState edu;

void EduRearmTimers(void);

#endif  // VFIOBOX_PLUGINS_EDU_EDU_H_

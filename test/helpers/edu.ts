// SPDX-License-Identifier: MIT
// QEMU edu (hw/misc/edu.c) register map and small drivers over a BAR0 mapping.

import type { Mapping } from '../../host/index.js';

export const EDU = {
  IDENT: 0x00,
  LIVENESS: 0x04,
  FACT: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_CNT: 0x90,
  DMA_CMD: 0x98,
  DMA_RUN: 0x1,
  DMA_TO_RAM: 0x2,
  DMA_IRQ: 0x4,
  DMA_IRQ_BIT: 0x100,
  BUF_ADDR: 0x40000n,
  IDENT_VALUE: 0x010000ed,
} as const;

/** Polls `done` until it holds or `timeoutMs` passes (a device-state poll with a deadline). */
export function pollUntil(done: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
  }
  return true;
}

/** Starts an edu DMA and waits for the run bit to clear; false on timeout. */
export function eduDma(
  bar: Mapping,
  src: bigint,
  dst: bigint,
  count: number,
  cmd: number,
): boolean {
  bar.write64(EDU.DMA_SRC, src);
  bar.write64(EDU.DMA_DST, dst);
  bar.write64(EDU.DMA_CNT, BigInt(count));
  bar.write64(EDU.DMA_CMD, BigInt(cmd | EDU.DMA_RUN));
  return pollUntil(() => (bar.read64(EDU.DMA_CMD) & BigInt(EDU.DMA_RUN)) === 0n, 5000);
}

// SPDX-License-Identifier: MIT
// The hostile fixture's BAR0 registers (test/fixtures/plugins/hostile/src/hostile.c, its header
// comment) as the vfio-user tests drive them, and the STATUS an import's error leaves behind.

import { type WitErrorEnum, witErrorCases } from '../../host/plugins/errno-map.js';

export const HOSTILE = {
  trap: 0x08,
  status: 0x30, // 0 ok, 0x100 | the WIT error case of the last import call
  read16: 0x44, // dma.read(value, 16)
  readLen: 0x48, // dma.read(k x stride, value), repeated
  write16: 0x54, // dma.write(value, 16 bytes)
  repeat: 0x60,
  stride: 0x64,
  windowIova: 0x70,
  map: 0x74, // map-window; value: length | 1 writable | 2 unaligned buffer
  unmap: 0x78, // unmap-window; value: offset from the buffer
  word: 0x7c, // read/write the u32 at the buffer + offset
  offset: 0x80,
  mapPages: 0x8c, // `repeat` one-page windows side by side
} as const;

/**
 * STATUS after an import returned err(code): 0x100 | the case's index in WIT order (the order
 * wit-bindgen numbers the fixture's C enum in, and host/plugins/errno-map.ts keeps).
 */
export function failedWith(enumName: WitErrorEnum, code: string): number {
  const index = witErrorCases(enumName).indexOf(code);
  if (index < 0) throw new RangeError(`${code} is not a case of ${enumName}`);
  return 0x100 | index;
}

// SPDX-License-Identifier: MIT
// A BAR mapped into this process. Accesses are bounds- and width-checked in native code; the
// memory itself never reaches JS as an ArrayBuffer, so nothing can use it after munmap.

import type { NativeMapping } from '../native/types.js';

export class Mapping {
  readonly #m: NativeMapping;

  /** @internal made by VfioDevice.mmap() */
  constructor(m: NativeMapping) {
    this.#m = m;
  }

  get sizeBytes(): number {
    return this.#m.sizeBytes;
  }

  get regionIndex(): number {
    return this.#m.regionIndex;
  }

  read32(offset: number): number {
    return this.#m.read(offset, 4);
  }

  write32(offset: number, value: number): void {
    this.#m.write(offset, 4, value);
  }

  read64(offset: number): bigint {
    return this.#m.read(offset, 8);
  }

  write64(offset: number, value: bigint): void {
    this.#m.write(offset, 8, value);
  }

  read(offset: number, width: 1 | 2 | 4): number {
    return this.#m.read(offset, width);
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#m.write(offset, width, value);
  }

  /** munmap now (the device's close() also does it). Idempotent. */
  close(): void {
    this.#m.close();
  }
}

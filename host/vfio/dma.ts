// SPDX-License-Identifier: MIT
// Host memory for device DMA, and eventfds for interrupts. Both are owned by the native core;
// these classes are thin, checked facades.

import type { NativeDmaBuffer, NativeEventFd } from '../native/types.js';
import { native } from './native.js';

/** Page-aligned anonymous memory the device can DMA into once mapped through an Iommu. */
export class DmaBuffer {
  /** @internal */
  readonly native: NativeDmaBuffer;

  constructor(sizeBytes: number) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
      throw new RangeError(`sizeBytes must be a positive integer (received ${sizeBytes})`);
    }
    this.native = new (native().DmaBuffer)(sizeBytes);
  }

  get sizeBytes(): number {
    return this.native.sizeBytes;
  }

  read(offset: number, length: number): Buffer {
    return this.native.read(offset, length);
  }

  write(offset: number, data: Uint8Array): void {
    this.native.write(offset, data);
  }

  fill(offset: number, length: number, byte: number): void {
    this.native.fill(offset, length, byte);
  }

  /** mlock; required before physAddr() for no-IOMMU DMA. */
  lock(): void {
    this.native.lock();
  }

  /** Physical address of the byte at `offset` (no-IOMMU DMA only; needs CAP_SYS_ADMIN). */
  physAddr(offset: number): bigint {
    return this.native.physAddr(offset);
  }

  /** Releases the memory once no IOMMU mapping uses it. Idempotent. */
  close(): void {
    this.native.close();
  }
}

/** An eventfd(2) for interrupt delivery. */
export class EventFd {
  /** @internal */
  readonly native: NativeEventFd;

  constructor() {
    this.native = new (native().EventFd)();
  }

  get fd(): number {
    return this.native.fd;
  }

  /** Non-blocking: the pending count (reset to 0), or 0n. */
  read(): bigint {
    return this.native.read();
  }

  /** Adds to the counter (signals). */
  signal(value: bigint | number = 1n): void {
    this.native.write(value);
  }

  /** Waits on the event loop (no thread); resolves with the count, or 0n on timeout or close(). */
  wait(timeoutMs: number): Promise<bigint> {
    return this.native.wait(timeoutMs);
  }

  close(): void {
    this.native.close();
  }
}

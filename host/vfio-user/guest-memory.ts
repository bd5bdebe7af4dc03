// SPDX-License-Identifier: MIT
// Guest memory a vfio-user client shares with the server: a memfd it maps with DMA_MAP (the
// server mmaps the fd), readable and writable from the client side through the native core.

import { loadVfioUserNative } from '../native/binding.js';

/** Guest memory in a memfd, for DMA maps with an fd (the server mmaps it). */
export interface Memfd {
  readonly fd: number;
  readonly sizeBytes: number;
  read(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  /**
   * ftruncate(2) to `sizeBytes`. Shrinking under a DMA map is what a hostile client does: the
   * server's DMA from the lost range then fails (EFAULT) instead of raising SIGBUS.
   */
  truncate(sizeBytes: number): void;
  /**
   * Seals the size (F_SEAL_SHRINK | F_SEAL_GROW), as QEMU's memory-backend-memfd does by
   * default; truncate() fails from then on. Only memory sealed against shrinking can back a
   * plugin's DMA window (WIT dma.map-window): the server knows its pages stay.
   */
  seal(): void;
  /** Idempotent. The server's own reference (from DMA_MAP) stays until it unmaps. */
  close(): void;
}

export function memfd(initialBytes: number, name = 'vfiobox-guest'): Memfd {
  if (!Number.isSafeInteger(initialBytes) || initialBytes <= 0) {
    throw new RangeError(`sizeBytes must be a positive integer (received ${initialBytes})`);
  }
  let sizeBytes = initialBytes;
  const api = loadVfioUserNative();
  let fd = api.memfdCreate(name, sizeBytes);
  const check = (offset: number, length: number) => {
    if (fd < 0) throw new RangeError('memfd is closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > sizeBytes) {
      throw new RangeError(`[${offset}, +${length}) is outside the ${sizeBytes}-byte memfd`);
    }
  };
  return {
    get fd() {
      return fd;
    },
    get sizeBytes() {
      return sizeBytes;
    },
    read(offset, length) {
      check(offset, length);
      return api.fdRead(fd, offset, length);
    },
    write(offset, data) {
      check(offset, data.byteLength);
      api.fdWrite(fd, offset, data);
    },
    truncate(newBytes) {
      if (fd < 0) throw new RangeError('memfd is closed');
      if (!Number.isSafeInteger(newBytes) || newBytes < 0) {
        throw new RangeError(`sizeBytes must be a non-negative integer (received ${newBytes})`);
      }
      api.fdTruncate(fd, newBytes);
      sizeBytes = newBytes;
    },
    seal() {
      if (fd < 0) throw new RangeError('memfd is closed');
      api.memfdSeal(fd);
    },
    close() {
      if (fd < 0) return;
      api.closeFd(fd);
      fd = -1;
    },
  };
}

/** Helpers for guest memory a client shares with the server. */
export const dma = { memfd };

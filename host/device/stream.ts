// SPDX-License-Identifier: MIT
// The device's byte stream (wit byte-stream.wit): two bounded FIFOs of 64 KiB, one per
// direction. Input the user typed waits here until the plugin reads it; output the plugin
// wrote goes straight to the peer, or waits here while no peer is attached.

/** byte-stream.wit: "the host takes everything unless its buffer (64 KiB) is full". */
export const STREAM_BUFFER_BYTES = 64 * 1024;

export class ByteFifo {
  #chunks: Uint8Array[] = [];
  #size = 0;
  constructor(readonly capacity = STREAM_BUFFER_BYTES) {}

  get size(): number {
    return this.#size;
  }

  /** Appends as much of `data` as fits; returns how many leading bytes were taken. */
  push(data: Uint8Array): number {
    const take = Math.min(data.length, this.capacity - this.#size);
    if (take > 0) {
      this.#chunks.push(data.slice(0, take));
      this.#size += take;
    }
    return take;
  }

  /** Removes and returns up to `max` bytes (all of them by default). */
  take(max = this.#size): Uint8Array {
    const n = Math.min(Math.max(0, max), this.#size);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      if (!chunk) break;
      const part = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    this.#size -= n;
    return out;
  }
}

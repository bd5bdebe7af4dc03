// SPDX-License-Identifier: MIT
// A device's memory areas (WIT 0.1.1 `memory-areas`) on the model's side: the buffers the model
// keeps for them while no transport has bound its own memory (the test harness, a model not
// served yet), and the check that routes an access to memory instead of the plugin.

import type { RegionLayout, SharedMemorySpace } from './types.js';

/** The model's own memory for its memory areas: one zeroed buffer per region, made on first use. */
export class LocalMemory implements SharedMemorySpace {
  readonly #buffers = new Map<number, Uint8Array>();
  constructor(readonly regions: readonly RegionLayout[]) {}

  #buffer(region: number, offset: number, len: number): Uint8Array {
    const layout = this.regions[region];
    if (!layout?.memory || offset < 0 || offset + len > layout.sizeBytes) {
      throw new RangeError(
        `memory: expected a range inside a memory region, got ${region}+${offset}`,
      );
    }
    let buf = this.#buffers.get(region);
    if (!buf) {
      const last = layout.mmapAreas[layout.mmapAreas.length - 1];
      buf = new Uint8Array(last ? last.offset + last.sizeBytes : 0);
      this.#buffers.set(region, buf);
    }
    if (offset + len > buf.length) throw new RangeError(`memory: ${region}+${offset} is no area`);
    return buf;
  }

  read(region: number, offset: number, len: number): Uint8Array {
    return this.#buffer(region, offset, len).slice(offset, offset + len);
  }

  write(region: number, offset: number, data: Uint8Array): void {
    this.#buffer(region, offset, data.length).set(data, offset);
  }
}

/** Whether [offset, offset + len) lies inside one of the region's memory areas. */
export function inArea(layout: RegionLayout | undefined, offset: number, len: number): boolean {
  if (!layout?.memory) return false;
  for (const a of layout.mmapAreas) {
    if (offset >= a.offset && offset + len <= a.offset + a.sizeBytes) return true;
  }
  return false;
}

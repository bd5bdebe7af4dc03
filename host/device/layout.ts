// SPDX-License-Identifier: MIT
// The vfio view of a described device (regions and irqs as VFIO_DEVICE_GET_REGION_INFO and
// GET_IRQ_INFO report them, linux/vfio.h), and the little-endian helpers the access splitting
// uses.

import type { DeviceDescription, MemoryArea } from '../plugins/engine.js';
import {
  IRQ_FLAG_AUTOMASKED,
  IRQ_FLAG_EVENTFD,
  IRQ_FLAG_MASKABLE,
  IRQ_FLAG_NORESIZE,
  IRQ_INTX,
  type IrqLayout,
  NUM_IRQS,
  NUM_REGIONS,
  REGION_CONFIG,
  REGION_FLAG_MMAP,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  type RegionLayout,
} from './types.js';

/**
 * Regions 0-5 from the BARs (the upper slot of a 64-bit BAR is empty), 7 = 256-byte config.
 * A BAR with memory areas (validated, sorted: describe.ts validateMemoryAreas) is MMAP with
 * those areas as its sparse mmap areas, and `memory`.
 */
export function regionLayout(
  desc: DeviceDescription,
  areas: readonly MemoryArea[] = [],
): RegionLayout[] {
  const regions: RegionLayout[] = [];
  for (let index = 0; index < NUM_REGIONS; index++) {
    regions.push({ index, sizeBytes: 0, flags: 0, mmapAreas: [] });
  }
  const flags = REGION_FLAG_READ | REGION_FLAG_WRITE;
  for (const bar of desc.bars) {
    regions[bar.index] = {
      index: bar.index,
      sizeBytes: Number(bar.sizeBytes),
      flags,
      mmapAreas: [],
    };
  }
  for (const area of areas) {
    const region = regions[area.bar];
    if (!region || region.sizeBytes === 0) continue; // validateMemoryAreas refused it already
    region.flags |= REGION_FLAG_MMAP;
    region.memory = true;
    region.mmapAreas.push({ offset: Number(area.offset), sizeBytes: Number(area.lengthBytes) });
  }
  regions[REGION_CONFIG] = { index: REGION_CONFIG, sizeBytes: 256, flags, mmapAreas: [] };
  return regions;
}

/**
 * vfio-pci's flags (vfio_pci_ioctl_get_irq_info): every present index is EVENTFD; INTx is
 * MASKABLE | AUTOMASKED, MSI and MSI-X NORESIZE; they are MASKABLE here too because the model
 * implements ACTION_MASK/UNMASK for them (interrupts.ts). ERR and REQ are absent.
 */
export function irqLayout(desc: DeviceDescription): IrqLayout[] {
  const counts = [desc.irqs.intx ? 1 : 0, desc.irqs.msiVectors, desc.irqs.msix?.vectors ?? 0];
  const irqs: IrqLayout[] = [];
  for (let index = 0; index < NUM_IRQS; index++) {
    const count = counts[index] ?? 0;
    let flags = 0;
    if (count > 0) {
      flags = IRQ_FLAG_EVENTFD | IRQ_FLAG_MASKABLE;
      flags |= index === IRQ_INTX ? IRQ_FLAG_AUTOMASKED : IRQ_FLAG_NORESIZE;
    }
    irqs.push({ index, count, flags });
  }
  return irqs;
}

// Per-access hot path (bench/plugins.mjs "device model"): BigInt arithmetic per byte dominated a
// 4-byte read, so widths up to 4 go through Number and all-ones values are precomputed.
const ONES: readonly bigint[] = [0n, 0xffn, 0xffffn, 0xffffffn, 0xffffffffn].concat(
  [5, 6, 7, 8].map((w) => (1n << BigInt(8 * w)) - 1n),
);

export function ones(width: number): bigint {
  return ONES[width] ?? (1n << BigInt(8 * width)) - 1n;
}

/** The widest naturally aligned access (at most `max` bytes) at `offset` that fits in `left`. */
export function chunkWidth(offset: number, left: number, max: 4 | 8): 1 | 2 | 4 | 8 {
  for (const w of [8, 4, 2] as const) {
    if (w <= max && offset % w === 0 && left >= w) return w;
  }
  return 1;
}

export function storeLe(out: Uint8Array, value: bigint): void {
  let lo = Number(BigInt.asUintN(32, value));
  const n = out.length;
  for (let i = 0; i < n && i < 4; i++, lo = Math.floor(lo / 256)) out[i] = lo & 0xff;
  if (n <= 4) return;
  let hi = Number(BigInt.asUintN(32, value >> 32n));
  for (let i = 4; i < n && i < 8; i++, hi = Math.floor(hi / 256)) out[i] = hi & 0xff;
  for (let i = 8; i < n; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

export function loadLe(data: Uint8Array): bigint {
  if (data.length <= 4) {
    let small = 0;
    for (let i = data.length - 1; i >= 0; i--) small = small * 256 + (data[i] ?? 0);
    return BigInt(small);
  }
  let value = 0n;
  for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i] ?? 0);
  return value;
}

// SPDX-License-Identifier: MIT
// A tiny in-test DeviceModel (host/device/types.ts) for the vfio-user tier: no plugin, plain
// registers, so the server and client are tested on their own.
//
// BAR0 (16 KiB, RW) register map, little-endian u32:
//   0x00 ID        RO  0x7e57de71
//   0x04 SCRATCH   RW  cleared by reset
//   0x08 DMA_LO, 0x0c DMA_HI  the IOVA;  0x10 DMA_LEN (<= 0x800)
//   0x14 DMA_CMD   W   1 = guest -> BAR0[0x800..], 2 = BAR0[0x800..] -> guest
//   0x18 DMA_STATUS R  0 ok, 1 the DmaSpace threw, 2 not attached
//   0x1c IRQ       W   (index << 16) | subindex: IrqSink.trigger; 0x20 IRQ_RESULT R 1/0
//   0x800..0xfff   the DMA buffer; the rest is plain RAM
// CONFIG (256 bytes, RW): vendor 0x1af4, device 0x10f0 at 0/2.

import {
  type DeviceModel,
  type DeviceStats,
  type DmaSpace,
  IRQ_FLAG_AUTOMASKED,
  IRQ_FLAG_EVENTFD,
  IRQ_FLAG_MASKABLE,
  IRQ_FLAG_NORESIZE,
  type IrqLayout,
  type IrqSink,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  type RegionLayout,
} from '../../host/device/types.js';

export const TINY_ID = 0x7e57de71;
export const REG = {
  ID: 0x00,
  SCRATCH: 0x04,
  DMA_LO: 0x08,
  DMA_HI: 0x0c,
  DMA_LEN: 0x10,
  DMA_CMD: 0x14,
  DMA_STATUS: 0x18,
  IRQ: 0x1c,
  IRQ_RESULT: 0x20,
  BUFFER: 0x800,
} as const;

export interface TinyDevice extends DeviceModel {
  readonly bar0: Uint8Array;
  readonly config: Uint8Array;
  resets: number;
  attaches: number;
  detaches: number;
  attached: boolean;
}

const RW = REGION_FLAG_READ | REGION_FLAG_WRITE;

function layout(): RegionLayout[] {
  const sizes = [0x4000, 0, 0, 0, 0, 0, 0, 256, 0];
  return sizes.map((sizeBytes, index) => ({
    index,
    sizeBytes,
    flags: sizeBytes ? RW : 0,
    mmapAreas: [],
  }));
}

const IRQS: IrqLayout[] = [
  { index: 0, count: 1, flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_MASKABLE | IRQ_FLAG_AUTOMASKED },
  { index: 1, count: 4, flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_NORESIZE },
  { index: 2, count: 0, flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_NORESIZE },
  { index: 3, count: 1, flags: IRQ_FLAG_EVENTFD },
  { index: 4, count: 1, flags: IRQ_FLAG_EVENTFD },
];

export function tinyDevice(): TinyDevice {
  const bar0 = new Uint8Array(0x4000);
  const bar = new DataView(bar0.buffer);
  const config = new Uint8Array(256);
  const regions = layout();
  let io: { irq: IrqSink; dma: DmaSpace } | undefined;
  const stats: DeviceStats = {
    reads: 0,
    writes: 0,
    irqs: 0,
    denied: {},
    fences: 0,
    restarts: 0,
    fenced: false,
  };
  const powerOn = () => {
    bar0.fill(0);
    bar.setUint32(REG.ID, TINY_ID, true);
    config.fill(0);
    new DataView(config.buffer).setUint32(0, 0x10f01af4, true);
  };
  powerOn();

  const memory = (region: number, offset: number, length: number): Uint8Array => {
    const r = regions[region];
    if (!r || offset < 0 || offset + length > r.sizeBytes) {
      throw new RangeError(`region ${region} [${offset}, +${length}) is outside the device`);
    }
    return region === 7 ? config : bar0;
  };

  const doDma = (cmd: number) => {
    if (!io) return bar.setUint32(REG.DMA_STATUS, 2, true);
    const iova =
      (BigInt(bar.getUint32(REG.DMA_HI, true)) << 32n) | BigInt(bar.getUint32(REG.DMA_LO, true));
    const len = Math.min(bar.getUint32(REG.DMA_LEN, true), 0x800);
    try {
      if (cmd === 1) bar0.set(io.dma.read(iova, len), REG.BUFFER);
      else io.dma.write(iova, bar0.slice(REG.BUFFER, REG.BUFFER + len));
      bar.setUint32(REG.DMA_STATUS, 0, true);
    } catch {
      bar.setUint32(REG.DMA_STATUS, 1, true);
    }
  };

  const sideEffects = (offset: number) => {
    if (offset === REG.ID) bar.setUint32(REG.ID, TINY_ID, true);
    if (offset === REG.DMA_CMD) doDma(bar.getUint32(REG.DMA_CMD, true));
    if (offset === REG.IRQ) {
      const v = bar.getUint32(REG.IRQ, true);
      const ok = io?.irq.trigger(v >>> 16, v & 0xffff) ?? false;
      if (ok) stats.irqs++;
      bar.setUint32(REG.IRQ_RESULT, ok ? 1 : 0, true);
    }
  };

  const device: TinyDevice = {
    name: 'tiny',
    regions,
    irqs: IRQS,
    resetSupported: true,
    bar0,
    config,
    resets: 0,
    attaches: 0,
    detaches: 0,
    get attached() {
      return io !== undefined;
    },
    read(region, offset, out) {
      stats.reads++;
      out.set(memory(region, offset, out.byteLength).subarray(offset, offset + out.byteLength));
    },
    write(region, offset, data) {
      stats.writes++;
      memory(region, offset, data.byteLength).set(data, offset);
      if (region === 0)
        for (let at = offset & ~3; at < offset + data.byteLength; at += 4) sideEffects(at);
    },
    reset() {
      device.resets++;
      powerOn();
    },
    attach(next) {
      device.attaches++;
      io = next;
    },
    detach() {
      device.detaches++;
      io = undefined;
    },
    streamInput() {},
    stats: () => ({ ...stats, denied: { ...stats.denied } }),
    close() {
      io = undefined;
    },
  };
  return device;
}

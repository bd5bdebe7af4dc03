// SPDX-License-Identifier: MIT
// A guest driver's walk through an edu device, done by the built-in vfio-user client: what
// `vfiobox demo` shows, and what the lab's C edu test does through VFIO. Each step checks what
// QEMU's edu documents (docs/specs/edu.rst) and reports one line.

import { EventFd } from '../vfio/dma.js';
import { dma, type VfioUserClient } from '../vfio-user/client.js';
import * as p from '../vfio-user/protocol.js';

const CONFIG = 7;
const BAR0 = 0;
const IRQ_MSI = 1;
// PCI config space (include/uapi/linux/pci_regs.h)
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_CAP_ID_MSI = 0x05;
const PCI_MSI_FLAGS_ENABLE = 0x1;
// edu registers (hw/misc/edu.c)
const EDU = { ident: 0x00, live: 0x04, fact: 0x08, status: 0x20, irqStatus: 0x24 } as const;
const EDU_DMA = { ack: 0x64, src: 0x80, dst: 0x88, count: 0x90, cmd: 0x98 } as const;
const EDU_STATUS_COMPUTING = 0x1;
const EDU_STATUS_IRQ_FACT = 0x80;
const EDU_DMA_BUFFER = 0x40000n;
const GUEST_IOVA = 0x100000n;
const GUEST_BYTES = 1 << 20;
const DMA_BYTES = 2048;

export interface Step {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

type Check = (c: VfioUserClient, ctx: WalkContext) => Promise<string>;

interface WalkContext {
  msiCap?: number | undefined;
}

function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

async function pollClear(c: VfioUserClient, offset: number, mask: number): Promise<number> {
  for (let i = 0; i < 100000; i++) {
    const v = await c.read32(BAR0, offset);
    if ((v & mask) === 0) return i;
  }
  throw new Error(`register ${hex(offset)} bit ${hex(mask)} never cleared`);
}

async function read64(c: VfioUserClient, offset: number): Promise<bigint> {
  const b = await c.regionRead(BAR0, offset, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

async function write64(c: VfioUserClient, offset: number, value: bigint): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  await c.regionWrite(BAR0, offset, b);
}

async function findCap(c: VfioUserClient, id: number): Promise<number | undefined> {
  let at = (await c.read32(CONFIG, PCI_CAPABILITY_LIST)) & 0xfc;
  for (let hops = 0; at !== 0 && hops < 48; hops++) {
    const head = await c.read32(CONFIG, at);
    if ((head & 0xff) === id) return at;
    at = (head >> 8) & 0xfc;
  }
  return undefined;
}

async function dmaRoundTrip(c: VfioUserClient): Promise<string> {
  const mem = dma.memfd(GUEST_BYTES);
  try {
    await c.dmaMap({
      iova: GUEST_IOVA,
      sizeBytes: GUEST_BYTES,
      flags: p.DMA_FLAG_READ | p.DMA_FLAG_WRITE,
      fd: mem.fd,
    });
    const pattern = Uint8Array.from({ length: DMA_BYTES }, (_, i) => (i * 7 + 3) & 0xff);
    mem.write(0, pattern);
    const run = async (src: bigint, dst: bigint, cmd: bigint) => {
      await write64(c, EDU_DMA.src, src);
      await write64(c, EDU_DMA.dst, dst);
      await write64(c, EDU_DMA.count, BigInt(DMA_BYTES));
      await write64(c, EDU_DMA.cmd, cmd);
      for (let i = 0; i < 100000 && ((await read64(c, EDU_DMA.cmd)) & 1n) !== 0n; i++);
      expect(((await read64(c, EDU_DMA.cmd)) & 1n) === 0n, 'DMA never completed');
    };
    await run(GUEST_IOVA, EDU_DMA_BUFFER, 1n); // RAM -> edu
    await run(EDU_DMA_BUFFER, GUEST_IOVA + 0x1000n, 3n); // edu -> RAM
    const back = mem.read(0x1000, DMA_BYTES);
    const same = back.every((b, i) => b === pattern[i]);
    expect(same, 'the bytes that came back differ from the ones sent');
    await c.dmaUnmap({ iova: GUEST_IOVA, sizeBytes: GUEST_BYTES });
    return `${DMA_BYTES} bytes guest RAM -> edu -> guest RAM through a memfd, identical`;
  } finally {
    mem.close();
  }
}

async function msiFactorial(c: VfioUserClient, ctx: WalkContext): Promise<string> {
  const cap = ctx.msiCap;
  expect(cap !== undefined, 'no MSI capability in config space');
  const efd = new EventFd();
  try {
    await c.setIrqs({
      index: IRQ_MSI,
      flags: p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER,
      start: 0,
      count: 1,
      fds: [efd.fd],
    });
    const flags = (await c.read32(CONFIG, cap ?? 0)) >>> 16;
    const ctrl = new Uint8Array(2);
    new DataView(ctrl.buffer).setUint16(0, flags | PCI_MSI_FLAGS_ENABLE, true);
    await c.regionWrite(CONFIG, (cap ?? 0) + 2, ctrl);
    await c.write32(BAR0, EDU.status, EDU_STATUS_IRQ_FACT);
    await c.write32(BAR0, EDU.fact, 10);
    const count = await efd.wait(5000);
    expect(count > 0n, 'no MSI within 5 s');
    const fact = await c.read32(BAR0, EDU.fact);
    expect(fact === 3628800, `10! read as ${fact}`);
    const cause = await c.read32(BAR0, EDU.irqStatus);
    await c.write32(BAR0, EDU_DMA.ack, cause);
    return `10! = ${fact}, completion signalled by MSI through an eventfd (cause ${hex(cause)})`;
  } finally {
    efd.close();
  }
}

const STEPS: Array<[string, Check]> = [
  [
    'VERSION',
    async (c) => {
      const v = await c.negotiate();
      return `protocol ${v.major}.${v.minor}, max_data_xfer_size ${v.capabilities.maxDataXferSize}`;
    },
  ],
  [
    'DEVICE_GET_INFO',
    async (c) => {
      const i = await c.deviceInfo();
      expect(i.numRegions >= 9, `num_regions ${i.numRegions}`);
      return `${i.numRegions} regions, ${i.numIrqs} irq indices, flags ${hex(i.flags)}`;
    },
  ],
  [
    'config space ids',
    async (c, ctx) => {
      const ids = await c.read32(CONFIG, 0);
      expect(ids === 0x11e81234, `vendor:device ${hex(ids)}`);
      ctx.msiCap = await findCap(c, PCI_CAP_ID_MSI);
      return `1234:11e8, MSI capability at ${ctx.msiCap === undefined ? 'none' : hex(ctx.msiCap)}`;
    },
  ],
  [
    'BAR0 region info',
    async (c) => {
      const r = await c.regionInfo(BAR0);
      expect(r.sizeBytes === 1 << 20, `size ${r.sizeBytes}`);
      return `1 MiB, flags ${hex(r.flags)}`;
    },
  ],
  [
    'enable memory + bus master',
    async (c) => {
      const cmd = (await c.read32(CONFIG, PCI_COMMAND)) & 0xffff;
      const b = new Uint8Array(2);
      new DataView(b.buffer).setUint16(0, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, true);
      await c.regionWrite(CONFIG, PCI_COMMAND, b);
      const now = (await c.read32(CONFIG, PCI_COMMAND)) & 0xffff;
      expect((now & 0x6) === 0x6, `command ${hex(now)}`);
      return `command ${hex(now)}`;
    },
  ],
  [
    'ident',
    async (c) => {
      const v = await c.read32(BAR0, EDU.ident);
      expect(v === 0x010000ed, hex(v));
      return hex(v);
    },
  ],
  [
    'liveness',
    async (c) => {
      await c.write32(BAR0, EDU.live, 0x12345678);
      const v = await c.read32(BAR0, EDU.live);
      expect(v === 0xedcba987, hex(v));
      return `wrote 0x12345678, read ${hex(v)}`;
    },
  ],
  [
    'factorial (polling)',
    async (c) => {
      await c.write32(BAR0, EDU.status, 0);
      await c.write32(BAR0, EDU.fact, 5);
      const polls = await pollClear(c, EDU.status, EDU_STATUS_COMPUTING);
      const v = await c.read32(BAR0, EDU.fact);
      expect(v === 120, `5! read as ${v}`);
      return `5! = ${v} after ${polls} status polls`;
    },
  ],
  ['factorial (MSI)', msiFactorial],
  ['DMA', async (c) => dmaRoundTrip(c)],
  [
    'DEVICE_RESET',
    async (c) => {
      await c.reset();
      const v = await c.read32(BAR0, EDU.live);
      expect(v === 0, `liveness after reset ${hex(v)}`);
      return 'liveness back to its power-on value';
    },
  ],
];

/** Runs every step against a connected client; `onStep` sees each result as it happens. */
export async function eduWalk(c: VfioUserClient, onStep: (s: Step) => void): Promise<Step[]> {
  const ctx: WalkContext = {};
  const out: Step[] = [];
  for (const [name, check] of STEPS) {
    const t0 = performance.now();
    let step: Step;
    try {
      step = { name, ok: true, detail: await check(c, ctx), ms: performance.now() - t0 };
    } catch (err) {
      step = { name, ok: false, detail: (err as Error).message, ms: performance.now() - t0 };
    }
    out.push(step);
    onStep(step);
  }
  return out;
}

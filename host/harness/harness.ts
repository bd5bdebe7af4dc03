// SPDX-License-Identifier: MIT
// A test bench for one plugin: the device model on a VirtualClock, guest RAM at IOVA 0, an IRQ
// sink that records every signal, a byte-stream peer that collects the output, and a trace of
// all of it (trace.ts). Nothing here uses real time or the event loop, so a test that drives a
// harness is deterministic: a device timer fires only inside advance().
//
//   const h = createHarness({ plugin });
//   h.write(0, 0x08, 4, 5);      // BAR0 offset 8 = 5
//   h.advance(10_000);           // 10 us of device time
//   h.read(0, 0x08, 4);          // -> 120
//   h.irqs;                      // [{ index: IRQ_INTX, sub: 0, atNs: 10000n }]

import {
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
} from '../device/config-space.js';
import { createPluginDevice, type PluginDeviceModel } from '../device/model.js';
import { REGION_CONFIG } from '../device/types.js';
import { errnoName, PluginError } from '../errors.js';
import type { CompiledPlugin, LogLevel } from '../plugins/engine.js';
import { WitError } from '../plugins/engine.js';
import type { Grant } from '../plugins/grants.js';
import { compareTraces, fromHex, type TraceEvent, type TraceMismatch, toHex } from './trace.js';
import { VirtualClock } from './virtual-clock.js';

/** Everything granted: what a plugin under test gets unless the test narrows it. */
export const GRANT_ALL: Readonly<Grant> = Object.freeze({
  irqVectors: 'all',
  dma: 'all',
  regions: [],
  log: true,
  clock: true,
  byteStream: true,
  sharedMemory: true,
  logLinesPerSecond: 1_000_000,
});

export const DEFAULT_RAM_BYTES = 1 << 20;
/** Where enableMsi() points messages: the x86 LAPIC window, as a guest would. */
const MSI_ADDRESS = 0xfee0_0000;

export interface HarnessOptions {
  plugin: CompiledPlugin;
  grant?: Grant;
  /** guest RAM at IOVA 0; default 1 MiB */
  ramBytes?: number;
  name?: string;
  restartBackoffMs?: number[];
  powerManagement?: boolean;
  /** cap on the plugin's linear memory (default: the device model's, 16 MiB) */
  memoryBytes?: number | undefined;
}

export interface IrqRecord {
  index: number;
  sub: number;
  atNs: bigint;
}

export interface Harness {
  readonly device: PluginDeviceModel;
  /** Guest memory; writes through it are not traced (use setRam for that). */
  readonly ram: Uint8Array;
  readonly clock: VirtualClock;
  readonly irqs: IrqRecord[];
  readonly trace: TraceEvent[];
  readonly logs: { level: LogLevel; message: string }[];
  /** Everything the device wrote to its byte stream so far. */
  readonly streamOut: Uint8Array;
  read(region: number, offset: number, width: 1 | 2 | 4): number;
  read64(region: number, offset: number): bigint;
  write(region: number, offset: number, width: 1 | 2 | 4 | 8, value: number | bigint): void;
  configRead(offset: number, width: 1 | 2 | 4): number;
  configWrite(offset: number, width: 1 | 2 | 4, value: number): void;
  /** Program and enable the MSI capability with 2^log2 vectors (default 1). */
  enableMsi(vectors?: number): void;
  /** Enable MSI-X and unmask every vector. */
  enableMsix(): void;
  advance(ns: number | bigint): void;
  reset(): void;
  setRam(iova: number | bigint, data: Uint8Array): void;
  getRam(iova: number | bigint, len: number): Uint8Array;
  streamIn(data: Uint8Array | string): void;
  /** Returns the interrupts recorded so far and forgets them. */
  takeIrqs(): IrqRecord[];
  close(): void;
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

class HarnessImpl implements Harness {
  readonly device: PluginDeviceModel;
  readonly ram: Uint8Array;
  readonly clock = new VirtualClock();
  readonly irqs: IrqRecord[] = [];
  readonly trace: TraceEvent[] = [];
  readonly logs: { level: LogLevel; message: string }[] = [];
  #out: Uint8Array[] = [];

  constructor(opts: HarnessOptions) {
    this.ram = new Uint8Array(opts.ramBytes ?? DEFAULT_RAM_BYTES);
    this.device = createPluginDevice({
      name: opts.name ?? 'harness',
      plugin: opts.plugin,
      grant: opts.grant ?? GRANT_ALL,
      clock: this.clock,
      ...(opts.restartBackoffMs ? { restartBackoffMs: opts.restartBackoffMs } : {}),
      ...(opts.powerManagement ? { powerManagement: true } : {}),
      ...(opts.memoryBytes ? { limits: { memoryBytes: opts.memoryBytes } } : {}),
      log: (level, message) => this.logs.push({ level, message }),
    });
    this.device.attach({
      irq: {
        trigger: (index, sub) => {
          this.irqs.push({ index, sub, atNs: this.clock.nowNs() });
          this.trace.push({ op: 'irq', index, sub });
          return true;
        },
      },
      dma: {
        read: (iova, len) => {
          const at = this.#span(iova, len);
          this.trace.push({ op: 'dma-read', iova: hex(iova), len });
          return this.ram.slice(at, at + len);
        },
        write: (iova, data) => {
          const at = this.#span(iova, data.length);
          this.trace.push({ op: 'dma-write', iova: hex(iova), len: data.length });
          this.ram.set(data, at);
        },
      },
      stream: {
        onDeviceOutput: (data) => {
          this.#out.push(data.slice());
          this.trace.push({ op: 'stream-out', hex: toHex(data) });
        },
      },
    });
  }

  #span(iova: bigint, len: number): number {
    if (iova < 0n || iova + BigInt(len) > BigInt(this.ram.length)) {
      throw new WitError('not-mapped', `iova ${hex(iova)}+${len} is outside guest RAM`);
    }
    return Number(iova);
  }

  get streamOut(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.#out));
  }

  #read(region: number, offset: number, width: 1 | 2 | 4 | 8): bigint {
    const out = new Uint8Array(width);
    const event = { op: 'read' as const, region, offset, width, value: '' };
    try {
      this.device.read(region, offset, out);
    } catch (err) {
      if (err instanceof PluginError) {
        event.value = `!${errnoName(err.errno)}`;
        this.trace.push(event);
      }
      throw err;
    }
    const value = le(out);
    event.value = hex(value);
    this.trace.push(event);
    return value;
  }

  read(region: number, offset: number, width: 1 | 2 | 4): number {
    return Number(this.#read(region, offset, width));
  }

  read64(region: number, offset: number): bigint {
    return this.#read(region, offset, 8);
  }

  write(region: number, offset: number, width: 1 | 2 | 4 | 8, value: number | bigint): void {
    const v = BigInt.asUintN(8 * width, BigInt(value));
    this.trace.push({ op: 'write', region, offset, width, value: hex(v) });
    const data = new Uint8Array(width);
    for (let i = 0; i < width; i++) data[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    this.device.write(region, offset, data);
  }

  configRead(offset: number, width: 1 | 2 | 4): number {
    return this.read(REGION_CONFIG, offset, width);
  }

  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    this.write(REGION_CONFIG, offset, width, value);
  }

  enableMsi(vectors = 1): void {
    const cap = this.device.config.msiOffset;
    if (cap === undefined) throw new RangeError('enableMsi: the device has no MSI capability');
    const mme = Math.max(0, Math.ceil(Math.log2(Math.max(1, vectors))));
    this.configWrite(cap + PCI_MSI_ADDRESS_LO, 4, MSI_ADDRESS);
    this.configWrite(cap + PCI_MSI_ADDRESS_HI, 4, 0);
    this.configWrite(cap + PCI_MSI_DATA_64, 2, 0x4000);
    const flags = this.configRead(cap + PCI_MSI_FLAGS, 2);
    this.configWrite(cap + PCI_MSI_FLAGS, 2, (flags & ~0x70) | (mme << 4) | PCI_MSI_FLAGS_ENABLE);
  }

  enableMsix(): void {
    const cap = this.device.config.msixOffset;
    const layout = this.device.description.irqs.msix;
    if (cap === undefined || !layout) throw new RangeError('enableMsix: the device has no MSI-X');
    for (let v = 0; v < layout.vectors; v++) {
      const entry = layout.tableOffset + 16 * v;
      this.write(layout.tableBar, entry, 4, MSI_ADDRESS);
      this.write(layout.tableBar, entry + 4, 4, 0);
      this.write(layout.tableBar, entry + 8, 4, 0x4000 + v);
      this.write(layout.tableBar, entry + 12, 4, 0);
    }
    const flags = this.configRead(cap + PCI_MSIX_FLAGS, 2);
    this.configWrite(cap + PCI_MSIX_FLAGS, 2, flags | PCI_MSIX_FLAGS_ENABLE);
  }

  advance(ns: number | bigint): void {
    const n = Number(ns);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new RangeError(`advance: expected ns >= 0, got ${ns}`);
    this.trace.push({ op: 'advance', ns: n });
    this.clock.advance(BigInt(n));
  }

  reset(): void {
    this.trace.push({ op: 'reset' });
    this.device.reset();
  }

  setRam(iova: number | bigint, data: Uint8Array): void {
    const at = this.#span(BigInt(iova), data.length);
    this.trace.push({ op: 'ram-set', iova: hex(BigInt(iova)), hex: toHex(data) });
    this.ram.set(data, at);
  }

  getRam(iova: number | bigint, len: number): Uint8Array {
    const at = this.#span(BigInt(iova), len);
    return this.ram.slice(at, at + len);
  }

  streamIn(data: Uint8Array | string): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.trace.push({ op: 'stream-in', hex: toHex(bytes) });
    this.device.streamInput(bytes);
  }

  takeIrqs(): IrqRecord[] {
    return this.irqs.splice(0);
  }

  close(): void {
    this.device.close();
  }
}

function le(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] ?? 0);
  return value;
}

/** A harness around a fresh instance of `plugin`, attached and on virtual time 0. */
export function createHarness(opts: HarnessOptions): Harness {
  return new HarnessImpl(opts);
}

/**
 * Runs `script` against `harness` and returns the events it produced. Replaying starts from a
 * fresh instance, so record from a fresh harness (or replay `harness.trace` as a whole).
 */
export function recordTrace(harness: Harness, script: (h: Harness) => void): TraceEvent[] {
  const start = harness.trace.length;
  script(harness);
  return harness.trace.slice(start);
}

export interface ReplayResult {
  ok: boolean;
  mismatches: TraceMismatch[];
  /** the trace the replay produced */
  actual: TraceEvent[];
}

/**
 * Performs one input event; a read or write the plugin refused is part of the trace, not a
 * failure. @throws RangeError for an input the harness cannot perform (a bad width, a region
 * the device lacks, RAM outside guest memory)
 */
export function performInput(h: Harness, e: TraceEvent): void {
  try {
    switch (e.op) {
      case 'read':
        if (e.width === 8) h.read64(e.region, e.offset);
        else if (e.width === 1 || e.width === 2 || e.width === 4)
          h.read(e.region, e.offset, e.width);
        else throw new RangeError(`read: expected width 1, 2, 4 or 8, got ${e.width}`);
        return;
      case 'write':
        if (e.width !== 1 && e.width !== 2 && e.width !== 4 && e.width !== 8) {
          throw new RangeError(`write: expected width 1, 2, 4 or 8, got ${e.width}`);
        }
        h.write(e.region, e.offset, e.width, BigInt(e.value));
        return;
      case 'advance':
        h.advance(e.ns);
        return;
      case 'reset':
        h.reset();
        return;
      case 'ram-set':
        h.setRam(BigInt(e.iova), fromHex(e.hex));
        return;
      case 'stream-in':
        h.streamIn(fromHex(e.hex));
        return;
      default:
        return;
    }
  } catch (err) {
    if (!(err instanceof PluginError)) throw err;
  }
}

/**
 * Replays the inputs of `events` against a fresh instance of `plugin` and compares what comes
 * back: read values, and the interrupts, DMA and stream output after each input, in order.
 */
export function replayTrace(
  plugin: CompiledPlugin,
  events: readonly TraceEvent[],
  opts: Omit<HarnessOptions, 'plugin'> = {},
): ReplayResult {
  const h = createHarness({ ...opts, plugin });
  try {
    for (const e of events) performInput(h, e);
    const actual = h.trace.slice();
    const mismatches = compareTraces(events, actual);
    return { ok: mismatches.length === 0, mismatches, actual };
  } finally {
    h.close();
  }
}

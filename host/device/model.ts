// SPDX-License-Identifier: MIT
// A DeviceModel (types.ts) around one plugin: the PCI config space emulated by the host
// (config-space.ts), interrupts routed by what the guest enabled (interrupts.ts), the MSI-X
// table and PBA emulated, BAR accesses of any length split into naturally aligned plugin calls
// of 1, 2, 4 or 8 bytes, and the plugin's lifetime, fencing and hot reload (supervisor.ts).
//
// - A fenced device reads all-ones from its BARs and drops writes, the access in flight
//   included; the emulated config space stays (the VMM keeps a sane device) and the plugin's
//   own config offsets read all-ones too.
// - A returned access error is not a fault: read/write throw PluginError kind 'returned' with
//   the errno from host/plugins/errno-map.ts, which the transport puts in its reply.
// - Memory and I/O decode (PCI_COMMAND_MEMORY/IO) do not gate BAR access: a vfio-user client
//   reads BARs through the socket whatever the guest's command register says (QEMU's client
//   does so before enabling decode), as vfio-pci's region fd does not gate either.
// - A restart after a fence keeps config space: only the plugin starts from reset state.
// - Memory areas (WIT 0.1.1): accesses inside one are copies from the device's memory (the
//   transport's once it binds it, else the model's own buffers), never plugin calls; the
//   plugin reaches the same bytes through shared-memory. Neither a fence nor a reset clears
//   them.

import { PluginError } from '../errors.js';
import type {
  AccessWidth,
  CompiledPlugin,
  DeviceDescription,
  InstanceLimits,
  LogLevel,
  PluginInstance,
  WitError,
} from '../plugins/engine.js';
import { ACCESS_ERRNO } from '../plugins/errno-map.js';
import { type DirectDmaGrant, directDmaGrant, type Grant } from '../plugins/grants.js';
import { type DeviceClock, realClock } from './clock.js';
import { ConfigSpace } from './config-space.js';
import { vectorCount } from './describe.js';
import { InterruptRouter, type IrqAction, type IrqSnapshot } from './interrupts.js';
import { chunkWidth, irqLayout, loadLe, ones, regionLayout, storeLe } from './layout.js';
import { inArea, LocalMemory } from './memory.js';
import { type DeviceEvent, Supervisor } from './supervisor.js';
import {
  type ByteStreamPeer,
  type DeviceModel,
  type DeviceStats,
  type DirectRoute,
  type DmaSpace,
  type IrqLayout,
  type IrqSink,
  REGION_CONFIG,
  type RegionLayout,
  type SharedMemorySpace,
} from './types.js';

export type { IrqSnapshot } from './interrupts.js';
export type { DeviceEvent } from './supervisor.js';
export { MAX_ARMED_TIMERS } from './supervisor.js';

export const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RESTART_BACKOFF_MS: readonly number[] = [0, 100, 1000, 5000];
export const DEFAULT_QUIET_PERIOD_MS = 10_000;

export interface PluginDeviceOptions {
  name: string;
  plugin: CompiledPlugin;
  grant: Grant;
  /** memory cap (default 16 MiB) and per-call budget (default none; engine.ts) */
  limits?: Partial<InstanceLimits>;
  /** default realClock(); the harness passes a VirtualClock */
  clock?: DeviceClock;
  /** default [0, 100, 1000, 5000] */
  restartBackoffMs?: number[];
  /** the plugin's log lines (after the grant's rate limit) */
  log?: (level: LogLevel, msg: string) => void;
  /** how long after a restart a successful call forgives earlier fences; default 10 s */
  quietPeriodMs?: number;
  /** add a Power Management capability to config space */
  powerManagement?: boolean;
  /** fences, restarts and reloads, as they happen */
  onEvent?: (event: DeviceEvent) => void;
  /** config space to start from (a ConfigSpace snapshot), e.g. after a worker restart */
  configState?: Uint8Array | undefined;
  /** called with a config-space snapshot after every config write (rare: the guest's setup) */
  onConfigState?: ((snapshot: Uint8Array) => void) | undefined;
  /** interrupt routing to start from (an InterruptRouter snapshot), e.g. after a restart */
  irqState?: IrqSnapshot | undefined;
  /**
   * called with a routing snapshot whenever the MSI-X table or the transport's masks change
   * (the guest's setup and SET_IRQS MASK/UNMASK, not each interrupt)
   */
  onIrqState?: ((snapshot: IrqSnapshot) => void) | undefined;
}

export interface PluginDeviceStats extends DeviceStats {
  /** interrupts lost: no sink, nothing armed, or a vector the guest did not enable */
  irqsDropped: number;
  /** raises held pending because the vector was masked */
  irqsPended: number;
  /** accesses the plugin answered with an access error */
  accessErrors: number;
  /** set-timer calls refused by the MAX_ARMED_TIMERS cap */
  timersDropped: number;
  /** input bytes lost to a full 64 KiB buffer */
  streamInDropped: number;
  consecutiveFences: number;
  reloads: number;
}

/** What createPluginDevice returns: a DeviceModel plus hot reload and SET_IRQS state. */
export interface PluginDeviceModel extends DeviceModel {
  readonly description: DeviceDescription;
  readonly config: ConfigSpace;
  /** Mask/unmask/trigger from the transport (vfio SET_IRQS with DATA_NONE). */
  irqState(index: number, start: number, count: number, action: IrqAction): void;
  /**
   * Hot reload: save-state from the running instance, instantiate `plugin`, check its
   * describe() is identical, load-state. Any failure leaves the old instance running and
   * throws PluginError. On a fenced device the new plugin starts from reset state instead.
   */
  reload(plugin: CompiledPlugin): void;
  stats(): PluginDeviceStats;
}

type Io = { irq: IrqSink; dma: DmaSpace; stream?: ByteStreamPeer };

/** out[at, at + width) = value, little-endian; value < 2^(8 * width). storeLe without a view. */
function storeAt(out: Uint8Array, at: number, width: number, value: bigint): void {
  let lo = width <= 4 ? Number(value) : Number(value & 0xffffffffn);
  for (let i = 0; i < width && i < 4; i++, lo >>>= 8) out[at + i] = lo & 0xff;
  if (width <= 4) return;
  let hi = Number(value >> 32n);
  for (let i = 4; i < width; i++, hi >>>= 8) out[at + i] = hi & 0xff;
}

/** The little-endian value of data[at, at + width). loadLe without a view. */
function loadAt(data: Uint8Array, at: number, width: number): bigint {
  let lo = 0;
  for (let i = Math.min(width, 4) - 1; i >= 0; i--) lo = lo * 256 + (data[at + i] ?? 0);
  if (width <= 4) return BigInt(lo);
  let hi = 0;
  for (let i = width - 1; i >= 4; i--) hi = hi * 256 + (data[at + i] ?? 0);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

class PluginDevice implements PluginDeviceModel {
  readonly name: string;
  readonly regions: readonly RegionLayout[];
  readonly irqs: readonly IrqLayout[];
  readonly resetSupported = true;
  readonly description: DeviceDescription;
  readonly config: ConfigSpace;
  readonly #router: InterruptRouter;
  readonly #onConfigState: ((snapshot: Uint8Array) => void) | undefined;
  readonly #onIrqState: ((snapshot: IrqSnapshot) => void) | undefined;
  readonly #plugin: Supervisor;
  readonly #dmaGrant: DirectDmaGrant;
  readonly #counters = { reads: 0, writes: 0, accessErrors: 0 };
  #io: Io | undefined;
  #local: LocalMemory | undefined;
  #memory: SharedMemorySpace | undefined;
  #direct: ((route: DirectRoute | undefined) => void) | undefined;
  #closed = false;
  // The BAR access in progress, read by the closures below, which are made once: the per-access
  // path allocates nothing of its own (the plugin call is synchronous and never re-enters).
  #bar = 0;
  #off = 0;
  #width: AccessWidth = 1;
  #value = 0n;
  /** set by #barChunk: the MSI-X structure the chunk falls in */
  #part: 'table' | 'pba' | undefined;
  readonly #readFn = (i: PluginInstance): bigint =>
    BigInt.asUintN(8 * this.#width, i.regionRead(this.#bar, BigInt(this.#off), this.#width));
  readonly #writeFn = (i: PluginInstance): void =>
    i.regionWrite(this.#bar, BigInt(this.#off), this.#width, this.#value);
  readonly #readReturned = (e: WitError): never =>
    this.#returned('region-read', this.#bar, this.#off)(e);
  readonly #writeReturned = (e: WitError): never =>
    this.#returned('region-write', this.#bar, this.#off)(e);

  constructor(opts: PluginDeviceOptions) {
    this.name = opts.name;
    this.#dmaGrant = directDmaGrant(opts.grant);
    const backoff = opts.restartBackoffMs ?? DEFAULT_RESTART_BACKOFF_MS;
    // The supervisor's imports reach the router only once start() made an instance live.
    this.#plugin = new Supervisor(
      {
        name: opts.name,
        clock: opts.clock ?? realClock(),
        grant: opts.grant,
        limits: {
          memoryBytes: opts.limits?.memoryBytes ?? DEFAULT_MEMORY_BYTES,
          budgetMs: opts.limits?.budgetMs,
        },
        backoffMs: backoff.length ? [...backoff] : [0],
        quietNs: BigInt(opts.quietPeriodMs ?? DEFAULT_QUIET_PERIOD_MS) * 1_000_000n,
        log: opts.log,
        onEvent: opts.onEvent,
        irq: {
          raise: (v) => this.#router.raise(v),
          lower: (v) => this.#router.lower(v),
          isMasked: (v) => this.#router.isMasked(v),
        },
        vectors: vectorCount,
        dma: () => this.#io?.dma,
        memory: () => this.#memorySpace(),
        streamPeer: () => this.#io?.stream,
        onFence: () => this.#router.lower(0),
        onLive: () => this.#routeChanged(),
      },
      opts.plugin,
    );
    const desc = this.#plugin.description;
    this.description = desc;
    this.config = new ConfigSpace(desc, {
      pm: opts.powerManagement ?? false,
      backend: {
        read: (offset, width) => this.#configRead(offset, width),
        write: (offset, width, value) => this.#configWrite(offset, width, value),
      },
      onChange: (what) => this.#router.onConfigChange(what),
    });
    this.#router = new InterruptRouter(desc, this.config);
    this.regions = regionLayout(desc, this.#plugin.memoryAreas);
    this.irqs = irqLayout(desc);
    if (opts.irqState) {
      this.#router.restore(
        opts.irqState,
        this.irqs.map((l) => l.count),
      );
    }
    if (opts.configState) {
      this.config.restore(opts.configState);
      // the plugin starts afresh: whatever line its predecessor asserted is not asserted now
      this.#router.lower(0);
    }
    this.#onConfigState = opts.onConfigState;
    this.#onIrqState = opts.onIrqState;
    this.#plugin.start();
  }

  #check(region: number, offset: number, length: number): void {
    const layout = Number.isInteger(region) ? this.regions[region] : undefined;
    if (!layout || layout.sizeBytes === 0) {
      throw new RangeError(`region: expected an implemented region index, got ${region}`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + length > layout.sizeBytes) {
      throw new RangeError(
        `region ${region}: expected an access inside ${layout.sizeBytes} bytes, ` +
          `got offset ${offset} length ${length}`,
      );
    }
  }

  #returned(op: string, bar: number, offset: number): (e: WitError) => never {
    return (e) => {
      this.#counters.accessErrors++;
      const errno = ACCESS_ERRNO[e.code as keyof typeof ACCESS_ERRNO] ?? 5;
      const where = `BAR${bar}+0x${offset.toString(16)}`;
      throw new PluginError(this.name, op, 'returned', `${e.code} at ${where}`, errno);
    };
  }

  /**
   * The width of the next BAR chunk: never straddling the MSI-X table or PBA. Sets #part to
   * the MSI-X structure the chunk falls in (undefined: the plugin's).
   */
  #barChunk(bar: number, offset: number, left: number): AccessWidth {
    let width = chunkWidth(offset, left, 8);
    const m = this.#router.msix;
    if (!m || (bar !== m.tableBar && bar !== m.pbaBar)) {
      this.#part = undefined; // msixPart's answer for a BAR without MSI-X structures
      return width;
    }
    let part = this.#router.msixPart(bar, offset, width);
    while (part === 'partial' && width > 1) {
      width = (width / 2) as 1 | 2 | 4;
      part = this.#router.msixPart(bar, offset, width);
    }
    this.#part = part === 'partial' ? undefined : part;
    return width;
  }

  /** The route a transport may call the live instance by (DeviceModel.bindDirect). */
  #route(): DirectRoute | undefined {
    const target = this.#plugin?.liveInstance?.native;
    if (target === undefined || this.#closed) return undefined;
    let bars = 0;
    for (const bar of this.description.bars) bars |= 1 << bar.index;
    return { target, bars, exclude: this.#router.msixRanges(), dma: this.#dmaGrant };
  }

  #routeChanged(): void {
    // the supervisor reports its first instance before the constructor has finished
    if (this.#direct && this.#router) this.#direct(this.#route());
  }

  bindDirect(sink: ((route: DirectRoute | undefined) => void) | undefined): void {
    this.#direct = sink;
    sink?.(this.#route());
  }

  #memorySpace(): SharedMemorySpace {
    if (this.#memory) return this.#memory;
    this.#local ??= new LocalMemory(this.regions);
    return this.#local;
  }

  bindMemory(space: SharedMemorySpace | undefined): void {
    this.#memory = space;
  }

  read(region: number, offset: number, out: Uint8Array): void {
    this.#check(region, offset, out.length);
    this.#counters.reads++;
    if (inArea(this.regions[region], offset, out.length)) {
      out.set(this.#memorySpace().read(region, offset, out.length));
      return;
    }
    for (let at = 0; at < out.length; ) {
      const off = offset + at;
      if (region === REGION_CONFIG) {
        const w = chunkWidth(off, out.length - at, 4) as 1 | 2 | 4;
        storeLe(out.subarray(at, at + w), BigInt(this.config.read(off, w)));
        at += w;
        continue;
      }
      const w = this.#barChunk(region, off, out.length - at);
      const part = this.#part;
      if (part !== undefined) this.#router.msixRead(part, off, out.subarray(at, at + w));
      else {
        this.#bar = region;
        this.#off = off;
        this.#width = w;
        storeAt(
          out,
          at,
          w,
          this.#plugin.call('region-read', this.#readFn, ones(w), this.#readReturned),
        );
      }
      at += w;
    }
  }

  write(region: number, offset: number, data: Uint8Array): void {
    this.#check(region, offset, data.length);
    this.#counters.writes++;
    if (inArea(this.regions[region], offset, data.length)) {
      this.#memorySpace().write(region, offset, data);
      return;
    }
    for (let at = 0; at < data.length; ) {
      const off = offset + at;
      if (region === REGION_CONFIG) {
        const w = chunkWidth(off, data.length - at, 4) as 1 | 2 | 4;
        this.config.write(off, w, Number(loadLe(data.subarray(at, at + w))));
        at += w;
        if (at >= data.length) this.#onConfigState?.(this.config.snapshot());
        continue;
      }
      const w = this.#barChunk(region, off, data.length - at);
      const part = this.#part;
      if (part !== undefined) {
        this.#router.msixWrite(part, off, data.subarray(at, at + w));
        if (part === 'table') this.#irqStateChanged();
      } else {
        this.#bar = region;
        this.#off = off;
        this.#width = w;
        this.#value = loadAt(data, at, w);
        this.#plugin.call('region-write', this.#writeFn, undefined, this.#writeReturned);
      }
      at += w;
    }
  }

  #configRead(offset: number, width: 1 | 2 | 4): number {
    const fallback = Number(ones(width));
    const value = this.#plugin.call('config-read', (i) => i.configRead(offset, width), fallback);
    return Number(BigInt.asUintN(8 * width, BigInt(Number.isInteger(value) ? value : fallback)));
  }

  #configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#plugin.call('config-write', (i) => i.configWrite(offset, width, value), undefined);
  }

  /** device.wit reset: "the host cancels all of the plugin's timers and lowers its interrupts first". */
  reset(): void {
    if (this.#closed) return;
    this.#plugin.cancelTimers();
    this.#router.reset();
    this.#irqStateChanged();
    this.config.reset();
    this.#onConfigState?.(this.config.snapshot()); // a restart after this must not undo it
    this.#plugin.call('reset', (i) => i.reset(), undefined);
  }

  attach(io: Io): void {
    this.#io = io;
    this.#router.sink = io.irq;
    const held = this.#plugin.takeStreamOutput();
    if (io.stream && held.length > 0) io.stream.onDeviceOutput(held);
  }

  detach(): void {
    this.#io = undefined;
    this.#router.sink = undefined;
    this.#router.clearClientState();
    this.#irqStateChanged();
  }

  #irqStateChanged(): void {
    this.#onIrqState?.(this.#router.snapshot());
  }

  streamInput(data: Uint8Array): void {
    if (!this.#closed) this.#plugin.streamInput(data);
  }

  irqState(index: number, start: number, count: number, action: IrqAction): void {
    const layout = this.irqs[index];
    if (!layout || start < 0 || count < 0 || start + count > layout.count) {
      throw new RangeError(
        `irqState: expected vectors inside irq index ${index}, got ${start}+${count}`,
      );
    }
    this.#router.clientState(index, start, count, action);
    if (action !== 'trigger') this.#irqStateChanged();
  }

  reload(plugin: CompiledPlugin): void {
    this.#plugin.reload(plugin);
  }

  stats(): PluginDeviceStats {
    const p = this.#plugin.counters;
    const irq = this.#router.counters;
    return {
      reads: this.#counters.reads,
      writes: this.#counters.writes,
      irqs: irq.irqs,
      denied: { ...this.#plugin.denied },
      fences: p.fences,
      restarts: p.restarts,
      fenced: this.#plugin.fenced,
      irqsDropped: irq.irqsDropped,
      irqsPended: irq.irqsPended,
      accessErrors: this.#counters.accessErrors,
      timersDropped: p.timersDropped,
      streamInDropped: p.streamInDropped,
      consecutiveFences: this.#plugin.consecutiveFences,
      reloads: p.reloads,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#direct?.(undefined);
    this.#direct = undefined;
    this.#plugin.close();
    this.detach();
  }
}

/** Instantiates the plugin, validates its describe() and builds the device around it. */
export function createPluginDevice(opts: PluginDeviceOptions): PluginDeviceModel {
  return new PluginDevice(opts);
}

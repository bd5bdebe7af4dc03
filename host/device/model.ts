// SPDX-License-Identifier: MIT
// A DeviceModel (types.ts) around one plugin: config space emulated by the host
// (config-space.ts), interrupts routed by what the guest enabled (interrupts.ts), the MSI-X
// table and PBA emulated, BAR accesses split into naturally aligned plugin calls, and the
// failure model of DESIGN.md "Isolation and failure model":
// - a plugin fault (PluginError 'trap'/'timeout', or anything other than a WitError thrown by an
//   export) fences the device: the access in flight completes (reads all-ones, writes dropped),
//   later BAR accesses do the same, its timers are cancelled, its INTx line drops and its DMA
//   and interrupts are refused; the emulated config space stays, so the VMM keeps a sane device;
// - the plugin is re-instantiated from reset state after restartBackoffMs[n] (n = consecutive
//   fences, the last value repeating); a restart whose describe() differs is another fence;
//   n returns to 0 after a successful call a quiet period after the last restart;
// - a returned access error is not a fault: read/write throw PluginError kind 'returned' with
//   the errno of host/plugins/errno-map.ts, which the transport puts in its reply.
// Memory and I/O decode (PCI_COMMAND_MEMORY/IO) do not gate BAR access: a vfio-user client
// reads BARs through the socket whatever the guest's command register says (QEMU's vfio-user
// client does so before enabling decode), and vfio-pci does not gate its region fd either.
// Every plugin call happens on the caller's thread, one at a time; timer and stream-ready
// callbacks that come due during a plugin call run right after it.

import { PluginError } from '../errors.js';
import { createLogger } from '../log.js';
import type {
  CompiledPlugin,
  DeviceDescription,
  HostImports,
  InstanceLimits,
  LogLevel,
  PluginInstance,
} from '../plugins/engine.js';
import { WitError } from '../plugins/engine.js';
import { ACCESS_ERRNO } from '../plugins/errno-map.js';
import { applyGrants, type Grant } from '../plugins/grants.js';
import { type DeviceClock, realClock } from './clock.js';
import { ConfigSpace } from './config-space.js';
import { descriptionKey, validateDescription, vectorCount } from './describe.js';
import { InterruptRouter, type IrqAction } from './interrupts.js';
import { ByteFifo } from './stream.js';
import {
  type ByteStreamPeer,
  type DeviceModel,
  type DeviceStats,
  type DmaSpace,
  IRQ_FLAG_AUTOMASKED,
  IRQ_FLAG_EVENTFD,
  IRQ_FLAG_MASKABLE,
  IRQ_FLAG_NORESIZE,
  type IrqLayout,
  type IrqSink,
  NUM_IRQS,
  NUM_REGIONS,
  REGION_CONFIG,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  type RegionLayout,
} from './types.js';

const debug = createLogger('device');

export const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RESTART_BACKOFF_MS: readonly number[] = [0, 100, 1000, 5000];
export const DEFAULT_QUIET_PERIOD_MS = 10_000;
/** clock.wit lets the host cap armed timers (at least 16). */
export const MAX_ARMED_TIMERS = 64;
const RESTART_TIMER = 'host:restart';

export interface PluginDeviceOptions {
  name: string;
  plugin: CompiledPlugin;
  grant: Grant;
  /** memory cap; default 16 MiB */
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
}

export interface DeviceEvent {
  kind: 'fence' | 'restart' | 'restart-failed' | 'reload';
  /** the export that faulted, for 'fence' */
  export?: string;
  message: string;
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

/** One instantiation: its imports act only while it is the device's current instance. */
interface Slot {
  instance: PluginInstance | undefined;
  live: boolean;
  /** effects (interrupts, timers) held until the instance is committed */
  staged: (() => void)[] | undefined;
}

type Try<T> = { ok: true; value: T } | { ok: false; error: unknown };

const EMPTY = new Uint8Array(0);

function ones(width: number): bigint {
  return (1n << BigInt(8 * width)) - 1n;
}

/** The widest naturally aligned access (at most `max` bytes) at `offset` that fits in `left`. */
function chunkWidth(offset: number, left: number, max: 4 | 8): 1 | 2 | 4 | 8 {
  for (const w of [8, 4, 2] as const) {
    if (w <= max && offset % w === 0 && left >= w) return w;
  }
  return 1;
}

function storeLe(out: Uint8Array, value: bigint): void {
  for (let i = 0; i < out.length; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

function loadLe(data: Uint8Array): bigint {
  let value = 0n;
  for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i] ?? 0);
  return value;
}

function isFault(err: unknown): boolean {
  return !(err instanceof WitError) && !(err instanceof PluginError && err.kind === 'unsupported');
}

class PluginDevice implements PluginDeviceModel {
  readonly name: string;
  readonly regions: readonly RegionLayout[];
  readonly irqs: readonly IrqLayout[];
  readonly resetSupported = true;
  readonly description: DeviceDescription;
  readonly config: ConfigSpace;
  readonly #router: InterruptRouter;
  readonly #clock: DeviceClock;
  readonly #grant: Grant;
  readonly #limits: InstanceLimits;
  readonly #backoffMs: readonly number[];
  readonly #quietNs: bigint;
  readonly #opts: PluginDeviceOptions;
  readonly #key: string;
  readonly #vectors: number;
  readonly #denied: Record<string, number> = {};
  readonly #armed = new Set<number>();
  readonly #streamIn = new ByteFifo();
  readonly #streamOut = new ByteFifo();
  readonly #deferred: (() => void)[] = [];
  readonly #counters = {
    reads: 0,
    writes: 0,
    fences: 0,
    restarts: 0,
    reloads: 0,
    accessErrors: 0,
    timersDropped: 0,
    streamInDropped: 0,
  };
  #plugin: CompiledPlugin;
  #slot: Slot;
  #io: { irq: IrqSink; dma: DmaSpace; stream?: ByteStreamPeer } | undefined;
  #fenced = false;
  #closed = false;
  #consecutive = 0;
  #restartedAtNs = 0n;
  #depth = 0;

  constructor(opts: PluginDeviceOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#plugin = opts.plugin;
    this.#grant = opts.grant;
    this.#clock = opts.clock ?? realClock();
    this.#limits = { memoryBytes: opts.limits?.memoryBytes ?? DEFAULT_MEMORY_BYTES };
    const backoff = opts.restartBackoffMs ?? DEFAULT_RESTART_BACKOFF_MS;
    this.#backoffMs = backoff.length ? [...backoff] : [0];
    this.#quietNs = BigInt(opts.quietPeriodMs ?? DEFAULT_QUIET_PERIOD_MS) * 1_000_000n;
    const first = this.#instantiate(opts.plugin);
    this.description = first.desc;
    this.#key = descriptionKey(first.desc);
    this.#vectors = vectorCount(first.desc);
    this.config = new ConfigSpace(first.desc, {
      pm: opts.powerManagement ?? false,
      backend: {
        read: (offset, width) => this.#configRead(offset, width),
        write: (offset, width, value) => this.#configWrite(offset, width, value),
      },
      onChange: (what) => this.#router.onConfigChange(what),
    });
    this.#router = new InterruptRouter(first.desc, this.config);
    this.regions = regionLayout(first.desc);
    this.irqs = irqLayout(first.desc);
    this.#slot = first.slot;
    this.#commit(first.slot);
  }

  // ---- instances ----

  #instantiate(plugin: CompiledPlugin): { slot: Slot; desc: DeviceDescription } {
    const slot: Slot = { instance: undefined, live: false, staged: [] };
    const host = applyGrants(this.#rawImports(slot), this.#grant, this.#denied, {
      nowMs: () => Number(this.#clock.nowNs() / 1000n) / 1000,
    });
    const instance = plugin.instantiate(host, this.#limits);
    slot.instance = instance;
    try {
      const desc = validateDescription(this.name, instance.describe());
      return { slot, desc };
    } catch (err) {
      slot.staged = undefined;
      instance.dispose();
      throw err;
    }
  }

  #commit(slot: Slot): void {
    const staged = slot.staged ?? [];
    slot.staged = undefined;
    slot.live = true;
    this.#slot = slot;
    for (const effect of staged) effect();
  }

  #retire(slot: Slot): void {
    slot.live = false;
    slot.staged = undefined;
    try {
      slot.instance?.dispose();
    } catch (err) {
      debug('%s: dispose failed: %s', this.name, String(err));
    }
  }

  #rawImports(slot: Slot): HostImports {
    const effect = (fn: () => void): void => {
      if (slot.staged) slot.staged.push(fn);
      else if (slot.live) fn();
    };
    const dma = (): DmaSpace => {
      if ((!slot.live && !slot.staged) || !this.#io) throw new WitError('not-mapped');
      return this.#io.dma;
    };
    return {
      irq: {
        raise: (vector) => {
          this.#checkVector(vector);
          effect(() => this.#router.raise(vector));
        },
        lower: (vector) => {
          this.#checkVector(vector);
          effect(() => this.#router.lower(vector));
        },
        isMasked: (vector) =>
          !slot.live || !this.#validVector(vector) || this.#router.isMasked(vector),
      },
      dma: {
        read: (iova, len) => dma().read(iova, len),
        write: (iova, data) => dma().write(iova, data),
      },
      log: {
        log: (level, message) => {
          if (slot.live || slot.staged) this.#opts.log?.(level, message);
        },
      },
      clock: {
        nowNs: () => this.#clock.nowNs(),
        setTimer: (id, delayNs) => effect(() => this.#armTimer(id, delayNs)),
        cancelTimer: (id) => effect(() => this.#disarmTimer(id)),
      },
      byteStream: {
        write: (data) => (slot.live ? this.#streamWrite(data) : 0),
        read: (maxLen) => (slot.live ? this.#streamIn.take(maxLen) : EMPTY),
      },
    };
  }

  #validVector(vector: number): boolean {
    return Number.isInteger(vector) && vector >= 0 && vector < this.#vectors;
  }

  #checkVector(vector: number): void {
    if (!this.#validVector(vector)) throw new WitError('invalid-vector');
  }

  // ---- calls into the plugin, and fencing ----

  #try<T>(fn: (inst: PluginInstance) => T): Try<T> {
    const inst = this.#slot.instance;
    if (!inst || !this.#slot.live) {
      return {
        ok: false,
        error: new PluginError(this.name, 'call', 'invalid', 'no live instance'),
      };
    }
    this.#depth++;
    try {
      return { ok: true, value: fn(inst) };
    } catch (error) {
      return { ok: false, error };
    } finally {
      this.#depth--;
    }
  }

  /** Calls an export; a fault fences and yields `fallback`, a WitError goes to `returned`. */
  #call<T>(
    name: string,
    fn: (inst: PluginInstance) => T,
    fallback: T,
    returned?: (e: WitError) => T,
  ): T {
    if (this.#fenced || this.#closed) return fallback;
    const result = this.#try(fn);
    try {
      if (result.ok) {
        this.#succeeded();
        return result.value;
      }
      const { error } = result;
      if (error instanceof WitError && returned) return returned(error);
      if (isFault(error)) this.#fence(name, error);
      else debug('%s: %s: %s', this.name, name, String(error));
      return fallback;
    } finally {
      if (this.#depth === 0) this.#drain();
    }
  }

  #succeeded(): void {
    if (this.#consecutive > 0 && this.#clock.nowNs() - this.#restartedAtNs >= this.#quietNs) {
      this.#consecutive = 0;
    }
  }

  /** Runs `fn` now, or after the plugin call in progress. */
  #later(fn: () => void): void {
    if (this.#depth > 0) this.#deferred.push(fn);
    else fn();
  }

  #drain(): void {
    for (let fn = this.#deferred.shift(); fn; fn = this.#deferred.shift()) fn();
  }

  #event(event: DeviceEvent): void {
    debug('%s: %s %s', this.name, event.kind, event.message);
    try {
      this.#opts.onEvent?.(event);
    } catch (err) {
      debug('%s: onEvent threw: %s', this.name, String(err));
    }
  }

  #fence(exportName: string, error: unknown): void {
    if (this.#fenced) return;
    this.#fenced = true;
    this.#retire(this.#slot);
    this.#cancelPluginTimers();
    this.#router.lower(0);
    const message = error instanceof Error ? error.message : String(error);
    this.#event({ kind: 'fence', export: exportName, message });
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.#counters.fences++;
    this.#consecutive++;
    const index = Math.min(this.#consecutive - 1, this.#backoffMs.length - 1);
    const delayMs = Math.max(0, this.#backoffMs[index] ?? 0);
    this.#clock.setTimer(RESTART_TIMER, BigInt(Math.round(delayMs * 1e6)), () => this.#restart());
  }

  #restart(): void {
    if (this.#closed || !this.#fenced) return;
    try {
      const next = this.#instantiate(this.#plugin);
      if (descriptionKey(next.desc) !== this.#key) {
        this.#retire(next.slot);
        throw new PluginError(this.name, 'describe', 'invalid', 'describe() changed on restart');
      }
      this.#fenced = false;
      this.#counters.restarts++;
      this.#restartedAtNs = this.#clock.nowNs();
      this.#commit(next.slot);
      this.#event({ kind: 'restart', message: `restart ${this.#counters.restarts}` });
      if (this.#streamIn.size > 0) this.#later(() => this.#streamReady());
    } catch (err) {
      this.#event({ kind: 'restart-failed', message: String(err) });
      this.#scheduleRestart();
    }
  }

  // ---- timers and stream ----

  #armTimer(id: number, delayNs: bigint): void {
    if (!this.#armed.has(id) && this.#armed.size >= MAX_ARMED_TIMERS) {
      this.#counters.timersDropped++;
      debug('%s: timer %d refused: %d armed', this.name, id, MAX_ARMED_TIMERS);
      return;
    }
    this.#armed.add(id);
    this.#clock.setTimer(`timer:${id}`, delayNs, () => {
      this.#armed.delete(id);
      this.#later(() => this.#call('timer', (i) => i.timer(id), undefined));
    });
  }

  #disarmTimer(id: number): void {
    this.#armed.delete(id);
    this.#clock.cancel(`timer:${id}`);
  }

  #cancelPluginTimers(): void {
    for (const id of this.#armed) this.#clock.cancel(`timer:${id}`);
    this.#armed.clear();
  }

  #streamWrite(data: Uint8Array): number {
    const peer = this.#io?.stream;
    if (peer && this.#streamOut.size === 0) {
      peer.onDeviceOutput(data.slice());
      return data.length;
    }
    return this.#streamOut.push(data);
  }

  #streamReady(): void {
    this.#call('stream-ready', (i) => i.streamReady(), undefined);
  }

  // ---- accesses ----

  #layout(region: number, offset: number, length: number): RegionLayout {
    const layout = Number.isInteger(region) ? this.regions[region] : undefined;
    if (!layout || layout.sizeBytes === 0) {
      throw new RangeError(`region: expected an implemented region index, got ${region}`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + length > layout.sizeBytes) {
      throw new RangeError(
        `region ${region}: expected an access inside ${layout.sizeBytes} bytes, got offset ${offset} length ${length}`,
      );
    }
    return layout;
  }

  #returned(op: string, bar: number, offset: number): (e: WitError) => never {
    return (e) => {
      this.#counters.accessErrors++;
      const errno = ACCESS_ERRNO[e.code as keyof typeof ACCESS_ERRNO] ?? 5;
      throw new PluginError(
        this.name,
        op,
        'returned',
        `${e.code} at BAR${bar}+0x${offset.toString(16)}`,
        errno,
      );
    };
  }

  read(region: number, offset: number, out: Uint8Array): void {
    this.#layout(region, offset, out.length);
    this.#counters.reads++;
    for (let at = 0; at < out.length; ) {
      const off = offset + at;
      if (region === REGION_CONFIG) {
        const w = chunkWidth(off, out.length - at, 4) as 1 | 2 | 4;
        storeLe(out.subarray(at, at + w), BigInt(this.config.read(off, w)));
        at += w;
        continue;
      }
      let w = chunkWidth(off, out.length - at, 8);
      let part = this.#router.msixPart(region, off, w);
      for (; part === 'partial' && w > 1; part = this.#router.msixPart(region, off, w)) {
        w = (w / 2) as 1 | 2 | 4;
      }
      const view = out.subarray(at, at + w);
      if (part === 'table' || part === 'pba') this.#router.msixRead(part, off, view);
      else {
        const bar = region;
        const value = this.#call(
          'region-read',
          (i) => BigInt.asUintN(8 * w, i.regionRead(bar, BigInt(off), w)),
          ones(w),
          this.#returned('region-read', bar, off),
        );
        storeLe(view, value);
      }
      at += w;
    }
  }

  write(region: number, offset: number, data: Uint8Array): void {
    this.#layout(region, offset, data.length);
    this.#counters.writes++;
    for (let at = 0; at < data.length; ) {
      const off = offset + at;
      if (region === REGION_CONFIG) {
        const w = chunkWidth(off, data.length - at, 4) as 1 | 2 | 4;
        this.config.write(off, w, Number(loadLe(data.subarray(at, at + w))));
        at += w;
        continue;
      }
      let w = chunkWidth(off, data.length - at, 8);
      let part = this.#router.msixPart(region, off, w);
      for (; part === 'partial' && w > 1; part = this.#router.msixPart(region, off, w)) {
        w = (w / 2) as 1 | 2 | 4;
      }
      const view = data.subarray(at, at + w);
      if (part === 'table' || part === 'pba') this.#router.msixWrite(part, off, view);
      else {
        const bar = region;
        const value = loadLe(view);
        this.#call(
          'region-write',
          (i) => i.regionWrite(bar, BigInt(off), w, value),
          undefined,
          this.#returned('region-write', bar, off),
        );
      }
      at += w;
    }
  }

  #configRead(offset: number, width: 1 | 2 | 4): number {
    const fallback = Number(ones(width));
    const value = this.#call('config-read', (i) => i.configRead(offset, width), fallback);
    return Number(BigInt.asUintN(8 * width, BigInt(Number.isInteger(value) ? value : fallback)));
  }

  #configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#call('config-write', (i) => i.configWrite(offset, width, value), undefined);
  }

  // ---- lifecycle ----

  reset(): void {
    if (this.#closed) return;
    this.#cancelPluginTimers();
    this.#router.reset();
    this.config.reset();
    this.#call('reset', (i) => i.reset(), undefined);
  }

  attach(io: { irq: IrqSink; dma: DmaSpace; stream?: ByteStreamPeer }): void {
    this.#io = io;
    this.#router.sink = io.irq;
    if (io.stream && this.#streamOut.size > 0) io.stream.onDeviceOutput(this.#streamOut.take());
  }

  detach(): void {
    this.#io = undefined;
    this.#router.sink = undefined;
    this.#router.clearClientState();
  }

  streamInput(data: Uint8Array): void {
    if (this.#closed || data.length === 0) return;
    const took = this.#streamIn.push(data);
    this.#counters.streamInDropped += data.length - took;
    if (took > 0) this.#later(() => this.#streamReady());
  }

  irqState(index: number, start: number, count: number, action: IrqAction): void {
    const layout = this.irqs[index];
    if (!layout || start < 0 || count < 0 || start + count > layout.count) {
      throw new RangeError(
        `irqState: expected vectors inside irq index ${index}, got ${start}+${count}`,
      );
    }
    this.#router.clientState(index, start, count, action);
  }

  reload(plugin: CompiledPlugin): void {
    if (this.#closed) throw new PluginError(this.name, 'reload', 'invalid', 'the device is closed');
    if (this.#fenced) {
      this.#reloadFenced(plugin);
      return;
    }
    const saved = this.#try((i) => i.saveState());
    if (!saved.ok) {
      const fault = isFault(saved.error);
      if (fault) this.#fence('save-state', saved.error);
      const text = saved.error instanceof Error ? saved.error.message : String(saved.error);
      throw new PluginError(
        this.name,
        'save-state',
        fault ? 'trap' : 'returned',
        `reload: ${text}`,
      );
    }
    const next = this.#instantiate(plugin);
    const instance = next.slot.instance;
    try {
      if (descriptionKey(next.desc) !== this.#key) {
        throw new PluginError(
          this.name,
          'describe',
          'invalid',
          'the new plugin describes a different device',
        );
      }
      instance?.loadState(saved.value);
    } catch (err) {
      this.#retire(next.slot);
      if (err instanceof PluginError) throw err;
      const kind = err instanceof WitError ? 'returned' : 'trap';
      throw new PluginError(
        this.name,
        'load-state',
        kind,
        `reload: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    this.#retire(this.#slot);
    this.#cancelPluginTimers();
    this.#plugin = plugin;
    this.#commit(next.slot);
    this.#counters.reloads++;
    this.#event({ kind: 'reload', message: 'state carried over' });
  }

  #reloadFenced(plugin: CompiledPlugin): void {
    const next = this.#instantiate(plugin);
    if (descriptionKey(next.desc) !== this.#key) {
      this.#retire(next.slot);
      throw new PluginError(
        this.name,
        'describe',
        'invalid',
        'the new plugin describes a different device',
      );
    }
    this.#clock.cancel(RESTART_TIMER);
    this.#fenced = false;
    this.#plugin = plugin;
    this.#restartedAtNs = this.#clock.nowNs();
    this.#commit(next.slot);
    this.#counters.reloads++;
    this.#event({ kind: 'reload', message: 'replaced a fenced plugin; started from reset state' });
  }

  stats(): PluginDeviceStats {
    const c = this.#counters;
    const irq = this.#router.counters;
    return {
      reads: c.reads,
      writes: c.writes,
      irqs: irq.irqs,
      denied: { ...this.#denied },
      fences: c.fences,
      restarts: c.restarts,
      fenced: this.#fenced,
      irqsDropped: irq.irqsDropped,
      irqsPended: irq.irqsPended,
      accessErrors: c.accessErrors,
      timersDropped: c.timersDropped,
      streamInDropped: c.streamInDropped,
      consecutiveFences: this.#consecutive,
      reloads: c.reloads,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.cancel(RESTART_TIMER);
    this.#cancelPluginTimers();
    this.#retire(this.#slot);
    this.detach();
  }
}

function regionLayout(desc: DeviceDescription): RegionLayout[] {
  const regions: RegionLayout[] = [];
  for (let index = 0; index < NUM_REGIONS; index++) {
    regions.push({ index, sizeBytes: 0, flags: 0, mmapAreas: [] });
  }
  const rw = REGION_FLAG_READ | REGION_FLAG_WRITE;
  for (const bar of desc.bars) {
    regions[bar.index] = {
      index: bar.index,
      sizeBytes: Number(bar.sizeBytes),
      flags: rw,
      mmapAreas: [],
    };
  }
  regions[REGION_CONFIG] = { index: REGION_CONFIG, sizeBytes: 256, flags: rw, mmapAreas: [] };
  return regions;
}

/** vfio-pci's VFIO_DEVICE_GET_IRQ_INFO flags: INTx maskable+automasked, MSI/MSI-X noresize. */
function irqLayout(desc: DeviceDescription): IrqLayout[] {
  const counts = [desc.irqs.intx ? 1 : 0, desc.irqs.msiVectors, desc.irqs.msix?.vectors ?? 0];
  const irqs: IrqLayout[] = [];
  for (let index = 0; index < NUM_IRQS; index++) {
    const count = counts[index] ?? 0;
    let flags = 0;
    if (count > 0) {
      flags = IRQ_FLAG_EVENTFD | IRQ_FLAG_MASKABLE;
      flags |= index === 0 ? IRQ_FLAG_AUTOMASKED : IRQ_FLAG_NORESIZE;
    }
    irqs.push({ index, count, flags });
  }
  return irqs;
}

/** Instantiates the plugin, validates its describe() and builds the device around it. */
export function createPluginDevice(opts: PluginDeviceOptions): PluginDeviceModel {
  return new PluginDevice(opts);
}

// SPDX-License-Identifier: MIT
// The life of a device's plugin instances (DESIGN.md "Isolation and failure model"): the host
// imports each instance gets, every call into it, and what happens when one goes wrong.
// - A fault (PluginError 'trap'/'timeout', or anything other than a WitError thrown by an export)
//   fences: the instance is dropped, its timers cancelled, its imports dead (DMA is refused with
//   not-mapped, interrupts ignored), and the caller gets its fallback (all-ones for a read).
// - The plugin is re-instantiated from reset state after backoffMs[n] (n = consecutive fences,
//   the last value repeating); a restart whose describe() differs from the first is another
//   fence. n returns to 0 on a successful call a quiet period after the last restart.
// - Hot reload swaps instances only when everything succeeded: until then the new instance's
//   interrupts and timers are staged, and the old one keeps running.
// Calls happen one at a time on the caller's thread; a timer or stream-ready that comes due
// during a call (a loopback stream peer, say) runs right after it.

import { PluginError } from '../errors.js';
import { createLogger } from '../log.js';
import type {
  CompiledPlugin,
  DeviceDescription,
  HostImports,
  InstanceLimits,
  LogLevel,
  MemoryArea,
  PluginInstance,
} from '../plugins/engine.js';
import { copyInto, copyOut, WitError } from '../plugins/engine.js';
import { applyGrants, type Grant, type MemoryLayout } from '../plugins/grants.js';
import type { DeviceClock } from './clock.js';
import { descriptionKey, validateDescription, validateMemoryAreas } from './describe.js';
import { ByteFifo } from './stream.js';
import type { ByteStreamPeer, DmaSpace, SharedMemorySpace } from './types.js';

const debug = createLogger('device');

/** clock.wit lets the host cap armed timers (at least 16). */
export const MAX_ARMED_TIMERS = 64;
const RESTART_TIMER = 'host:restart';
const EMPTY = new Uint8Array(0);

export interface DeviceEvent {
  kind: 'fence' | 'restart' | 'restart-failed' | 'reload';
  /** the export that faulted, for 'fence' */
  export?: string;
  message: string;
}

/** What the supervisor needs from the device around it. */
export interface SupervisorEnv {
  name: string;
  clock: DeviceClock;
  grant: Grant;
  limits: InstanceLimits;
  backoffMs: readonly number[];
  quietNs: bigint;
  log: ((level: LogLevel, msg: string) => void) | undefined;
  onEvent: ((event: DeviceEvent) => void) | undefined;
  /** the interrupt side of the irq import, after the vector check */
  irq: { raise(v: number): void; lower(v: number): void; isMasked(v: number): boolean };
  /** how many vectors the plugin may name (describe.ts vectorCount) */
  vectors(desc: DeviceDescription): number;
  dma(): DmaSpace | undefined;
  /** where the plugin's memory areas live now (the transport's, or the model's own) */
  memory(): SharedMemorySpace;
  streamPeer(): ByteStreamPeer | undefined;
  /** the instance was fenced: drop what it asserted */
  onFence(): void;
  /**
   * the live instance changed: a new one is live (start, restart, reload), or none is
   * (fence, close). A transport may call a live instance directly (model.ts bindDirect).
   */
  onLive?(instance: PluginInstance | undefined): void;
}

/** One instantiation: its imports act only while it is the current instance. */
interface Slot {
  instance: PluginInstance | undefined;
  live: boolean;
  /** effects (interrupts, timers) held until the instance is committed */
  staged: (() => void)[] | undefined;
  /** the areas its shared-memory calls may touch, once it declared them */
  memory: MemoryLayout | undefined;
}

interface Instantiated {
  slot: Slot;
  desc: DeviceDescription;
  areas: readonly MemoryArea[];
  /** what a restart or reload must reproduce: describe() and memory-areas */
  key: string;
}

type Try<T> = { ok: true; value: T } | { ok: false; error: unknown };

function isFault(err: unknown): boolean {
  return !(err instanceof WitError) && !(err instanceof PluginError && err.kind === 'unsupported');
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Supervisor {
  readonly description: DeviceDescription;
  /** the memory areas the plugin declared (memory-areas, WIT 0.1.1); empty for most */
  readonly memoryAreas: readonly MemoryArea[];
  readonly denied: Record<string, number> = {};
  readonly counters = { fences: 0, restarts: 0, reloads: 0, timersDropped: 0, streamInDropped: 0 };
  readonly #env: SupervisorEnv;
  readonly #key: string;
  readonly #vectors: number;
  readonly #armed = new Set<number>();
  readonly #streamIn = new ByteFifo();
  readonly #streamOut = new ByteFifo();
  readonly #deferred: (() => void)[] = [];
  #plugin: CompiledPlugin;
  #slot: Slot;
  #fenced = false;
  #closed = false;
  #consecutive = 0;
  #restartedAtNs = 0n;
  #depth = 0;

  /** Instantiates `plugin` and validates its describe(); throws PluginError. */
  constructor(env: SupervisorEnv, plugin: CompiledPlugin) {
    this.#env = env;
    this.#plugin = plugin;
    const first = this.#instantiate(plugin);
    this.description = first.desc;
    this.memoryAreas = first.areas;
    this.#key = first.key;
    this.#vectors = env.vectors(first.desc);
    this.#slot = first.slot;
  }

  /** Makes the first instance live; call once the device around it is built. */
  start(): void {
    this.#commit(this.#slot);
  }

  get fenced(): boolean {
    return this.#fenced;
  }

  get consecutiveFences(): number {
    return this.#consecutive;
  }

  // ---- instances ----

  #instantiate(plugin: CompiledPlugin): Instantiated {
    const slot: Slot = { instance: undefined, live: false, staged: [], memory: undefined };
    const clock = this.#env.clock;
    const raw = this.#imports(slot);
    if (plugin.world === 'emulated-device-with-memory') raw.sharedMemory = this.#memory(slot);
    const host = applyGrants(raw, this.#env.grant, this.denied, {
      nowMs: () => Number(clock.nowNs() / 1000n) / 1000,
      memoryLayout: () => slot.memory,
    });
    const instance = plugin.instantiate(host, this.#env.limits);
    slot.instance = instance;
    try {
      const name = this.#env.name;
      const desc = validateDescription(name, instance.describe());
      const areas = validateMemoryAreas(name, desc, instance.memoryAreas?.() ?? []);
      const barSizes = new Map(desc.bars.map((b) => [b.index, b.sizeBytes] as const));
      slot.memory = { barSizes, areas };
      const key = `${descriptionKey(desc)}\n${descriptionKey(areas)}`;
      return { slot, desc, areas, key };
    } catch (err) {
      this.#retire(slot);
      throw err;
    }
  }

  /** the raw shared-memory import of `slot`: the model's memory, while the slot may act */
  #memory(slot: Slot): NonNullable<HostImports['sharedMemory']> {
    const space = (): SharedMemorySpace => {
      if (!slot.live && !slot.staged) throw new WitError('not-granted');
      return this.#env.memory();
    };
    return {
      read: (bar, offset, len) => space().read(bar, Number(offset), len),
      write: (bar, offset, data) => space().write(bar, Number(offset), data),
    };
  }

  #commit(slot: Slot): void {
    const staged = slot.staged ?? [];
    slot.staged = undefined;
    slot.live = true;
    this.#slot = slot;
    for (const effect of staged) effect();
    this.#env.onLive?.(slot.instance);
  }

  /** The instance calls of the live slot may go to, for the transport (model.ts bindDirect). */
  get liveInstance(): PluginInstance | undefined {
    return this.#slot.live && !this.#fenced && !this.#closed ? this.#slot.instance : undefined;
  }

  #retire(slot: Slot): void {
    if (slot.live) this.#env.onLive?.(undefined);
    slot.live = false;
    slot.staged = undefined;
    try {
      slot.instance?.dispose();
    } catch (err) {
      debug('%s: dispose failed: %s', this.#env.name, text(err));
    }
  }

  #imports(slot: Slot): HostImports {
    const env = this.#env;
    const effect = (fn: () => void): void => {
      if (slot.staged) slot.staged.push(fn);
      else if (slot.live) fn();
    };
    const dma = (): DmaSpace => {
      const space = slot.live || slot.staged ? env.dma() : undefined;
      if (!space) throw new WitError('not-mapped');
      return space;
    };
    const vector = (v: number): number => {
      if (!this.#validVector(v)) throw new WitError('invalid-vector');
      return v;
    };
    return {
      irq: {
        raise: (v) => {
          const checked = vector(v);
          effect(() => env.irq.raise(checked));
        },
        lower: (v) => {
          const checked = vector(v);
          effect(() => env.irq.lower(checked));
        },
        isMasked: (v) => !slot.live || !this.#validVector(v) || env.irq.isMasked(v),
      },
      dma: {
        read: (iova, len) => dma().read(iova, len),
        write: (iova, data) => dma().write(iova, data),
        readInto: (iova, len, target) => {
          const space = dma();
          if (space.readInto) return space.readInto(iova, len, target);
          return copyInto(space.read(iova, len), target);
        },
        writeFrom: (iova, memory, offset, len) => {
          const space = dma();
          if (space.writeFrom) space.writeFrom(iova, memory, offset, len);
          else space.write(iova, copyOut(memory, offset, len));
        },
      },
      log: {
        log: (level, message) => {
          if (slot.live || slot.staged) env.log?.(level, message);
        },
      },
      clock: {
        nowNs: () => env.clock.nowNs(),
        setTimer: (id, delayNs) => effect(() => this.#armTimer(id, delayNs)),
        cancelTimer: (id) => effect(() => this.#disarmTimer(id)),
      },
      byteStream: {
        write: (data) => (slot.live ? this.#streamWrite(data) : 0),
        read: (maxLen) => (slot.live ? this.#streamIn.take(maxLen) : EMPTY),
      },
    };
  }

  #validVector(v: number): boolean {
    return Number.isInteger(v) && v >= 0 && v < this.#vectors;
  }

  // ---- calls ----

  #try<T>(fn: (inst: PluginInstance) => T): Try<T> {
    const inst = this.#slot.instance;
    if (!inst || !this.#slot.live) {
      return {
        ok: false,
        error: new PluginError(this.#env.name, 'call', 'invalid', 'no instance'),
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

  /**
   * Calls an export. A fault fences and yields `fallback` (so does a fenced or closed device);
   * a WitError goes to `returned` when given, else yields `fallback`.
   */
  call<T>(
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
      else debug('%s: %s: %s', this.#env.name, name, text(error));
      return fallback;
    } finally {
      if (this.#depth === 0) this.#drain();
    }
  }

  #succeeded(): void {
    const now = this.#consecutive > 0 ? this.#env.clock.nowNs() : 0n;
    if (this.#consecutive > 0 && now - this.#restartedAtNs >= this.#env.quietNs) {
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
    debug('%s: %s %s', this.#env.name, event.kind, event.message);
    try {
      this.#env.onEvent?.(event);
    } catch (err) {
      debug('%s: onEvent threw: %s', this.#env.name, text(err));
    }
  }

  // ---- fencing ----

  #fence(exportName: string, error: unknown): void {
    if (this.#fenced) return;
    this.#fenced = true;
    this.#retire(this.#slot);
    this.cancelTimers();
    this.#env.onFence();
    this.#event({ kind: 'fence', export: exportName, message: text(error) });
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.counters.fences++;
    this.#consecutive++;
    const delays = this.#env.backoffMs;
    const delayMs = Math.max(0, delays[Math.min(this.#consecutive, delays.length) - 1] ?? 0);
    const delayNs = BigInt(Math.round(delayMs * 1e6));
    this.#env.clock.setTimer(RESTART_TIMER, delayNs, () => this.#restart());
  }

  #restart(): void {
    if (this.#closed || !this.#fenced) return;
    try {
      const next = this.#instantiate(this.#plugin);
      this.#checkSame(next);
      this.#fenced = false;
      this.counters.restarts++;
      this.#restartedAtNs = this.#env.clock.nowNs();
      this.#commit(next.slot);
      this.#event({ kind: 'restart', message: `restart ${this.counters.restarts}` });
      if (this.#streamIn.size > 0) this.#later(() => this.#streamReady());
    } catch (err) {
      this.#event({ kind: 'restart-failed', message: text(err) });
      this.#scheduleRestart();
    }
  }

  #checkSame(next: Instantiated): void {
    if (next.key === this.#key) return;
    this.#retire(next.slot);
    const what = 'describe() or memory-areas changed';
    throw new PluginError(this.#env.name, 'describe', 'invalid', what);
  }

  // ---- timers and stream ----

  #armTimer(id: number, delayNs: bigint): void {
    if (!this.#armed.has(id) && this.#armed.size >= MAX_ARMED_TIMERS) {
      this.counters.timersDropped++;
      debug('%s: timer %d refused: %d armed', this.#env.name, id, MAX_ARMED_TIMERS);
      return;
    }
    this.#armed.add(id);
    this.#env.clock.setTimer(`timer:${id}`, delayNs, () => {
      this.#armed.delete(id);
      this.#later(() => this.call('timer', (i) => i.timer(id), undefined));
    });
  }

  #disarmTimer(id: number): void {
    this.#armed.delete(id);
    this.#env.clock.cancel(`timer:${id}`);
  }

  /** Disarms every plugin timer (reset, fence, reload; the restart timer stays). */
  cancelTimers(): void {
    for (const id of this.#armed) this.#env.clock.cancel(`timer:${id}`);
    this.#armed.clear();
  }

  #streamWrite(data: Uint8Array): number {
    const peer = this.#env.streamPeer();
    if (peer && this.#streamOut.size === 0) {
      peer.onDeviceOutput(data.slice());
      return data.length;
    }
    return this.#streamOut.push(data);
  }

  #streamReady(): void {
    this.call('stream-ready', (i) => i.streamReady(), undefined);
  }

  /** Queues user input (dropping what exceeds 64 KiB) and tells the plugin once. */
  streamInput(data: Uint8Array): void {
    if (this.#closed || data.length === 0) return;
    const took = this.#streamIn.push(data);
    this.counters.streamInDropped += data.length - took;
    if (took > 0) this.#later(() => this.#streamReady());
  }

  /** Output written while no peer was attached. */
  takeStreamOutput(): Uint8Array {
    return this.#streamOut.take();
  }

  // ---- reload ----

  reload(plugin: CompiledPlugin): void {
    const name = this.#env.name;
    if (this.#closed) throw new PluginError(name, 'reload', 'invalid', 'the device is closed');
    if (this.#fenced) {
      this.#reloadFenced(plugin);
      return;
    }
    const saved = this.#try((i) => i.saveState());
    if (!saved.ok) {
      const fault = isFault(saved.error);
      if (fault) this.#fence('save-state', saved.error);
      const kind = fault ? 'trap' : 'returned';
      throw new PluginError(name, 'save-state', kind, `reload: ${text(saved.error)}`);
    }
    const next = this.#instantiate(plugin);
    this.#checkSame(next);
    try {
      next.slot.instance?.loadState(saved.value);
    } catch (err) {
      this.#retire(next.slot);
      if (err instanceof PluginError) throw err;
      const kind = err instanceof WitError ? 'returned' : 'trap';
      throw new PluginError(name, 'load-state', kind, `reload: ${text(err)}`);
    }
    this.#retire(this.#slot);
    this.cancelTimers();
    this.#swap(plugin, next.slot, 'state carried over');
  }

  #reloadFenced(plugin: CompiledPlugin): void {
    const next = this.#instantiate(plugin);
    this.#checkSame(next);
    this.#env.clock.cancel(RESTART_TIMER);
    this.#fenced = false;
    this.#restartedAtNs = this.#env.clock.nowNs();
    this.#swap(plugin, next.slot, 'replaced a fenced plugin; started from reset state');
  }

  #swap(plugin: CompiledPlugin, slot: Slot, message: string): void {
    this.#plugin = plugin;
    this.#commit(slot);
    this.counters.reloads++;
    this.#event({ kind: 'reload', message });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#env.clock.cancel(RESTART_TIMER);
    this.cancelTimers();
    this.#retire(this.#slot);
  }
}

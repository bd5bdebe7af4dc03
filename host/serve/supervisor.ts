// SPDX-License-Identifier: MIT
// The main thread's side of a served device: spawns its worker, talks to it over comlink (the
// control plane), and watches the shared heartbeat. A plugin call that overruns its budget, or
// a worker that dies, gets the worker terminated (the only way to stop a V8 wasm loop) and a
// fresh one started after a backoff. The host process never dies because of a plugin.
//
// The VMM never notices a restart beyond a pause: the worker's vfio-user server core outlives
// the worker (host/vfio-user/server.ts `persistent`), so after terminate() the request that
// was in flight gets the answer of a fenced device (vfioUserFence: reads all-ones, writes
// dropped) and the next worker adopts the core, with the same client connection; what the
// client sent in between waits in the socket and is served in order.

import { EventEmitter } from 'node:events';
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { type Remote, wrap } from 'comlink';
import type { IrqSnapshot } from '../device/interrupts.js';
import { loadVfioUserNative } from '../native/binding.js';
import { DEFAULT_ENGINE, interruptsCalls } from '../plugins/engines/index.js';
import type { DeviceControl, WorkerData } from './device-worker.js';
import { nodeEndpoint } from './endpoint.js';
import {
  CONFIG_STATE_EVENT,
  DEFAULT_BUDGET_MS,
  type DeviceRunStats,
  type DeviceSpec,
  HB_BUSY,
  HB_SEQ,
  HB_SLOTS,
  IRQ_STATE_EVENT,
  type ServeEvent,
} from './spec.js';

export { DEFAULT_BUDGET_MS } from './spec.js';

const WATCH_INTERVAL_MS = 10;
const RESTART_BACKOFF_MS = [100, 1000, 5000];

/**
 * How long the watchdog lets one plugin call run. An engine that interrupts calls itself
 * (wasmtime) traps at the budget, which fences the device without a worker restart; the
 * watchdog waits twice as long, so that trap always comes first and only what the engine
 * cannot interrupt (a host import that hangs) is left to it.
 */
export function watchdogLimitMs(spec: DeviceSpec): number {
  const budget = spec.budgetMs ?? DEFAULT_BUDGET_MS;
  return interruptsCalls(spec.engine ?? DEFAULT_ENGINE) ? 2 * budget : budget;
}

/** Where the worker entry is: next to this module (build/) or next to the bundle (dist/). */
export function defaultWorkerUrl(): URL {
  return new URL('./device-worker.js', import.meta.url);
}

export interface SupervisorOptions {
  workerUrl?: URL | undefined;
}

/**
 * Runs one device in a worker. Events ('event', ServeEvent) include the worker's own
 * (connect, dma-map, ...) and the watchdog's ('watchdog-overrun', 'worker-exit', 'restarted').
 */
export class DeviceSupervisor extends EventEmitter {
  readonly spec: DeviceSpec;
  #workerUrl: URL;
  #worker: Worker | undefined;
  #remote: Remote<DeviceControl> | undefined;
  #heartbeat = new Int32Array(new SharedArrayBuffer(HB_SLOTS * 4));
  #timer: NodeJS.Timeout | undefined;
  #busySeq = -1;
  #busySince = 0;
  #restarts = 0;
  #consecutive = 0;
  #stopping = false;

  constructor(spec: DeviceSpec, options: SupervisorOptions = {}) {
    super();
    this.spec = spec;
    this.#workerUrl = options.workerUrl ?? defaultWorkerUrl();
  }

  get watchdogRestarts(): number {
    return this.#restarts;
  }

  /** Starts the worker and the device in it; rejects if the device cannot start. */
  async start(): Promise<void> {
    await this.#start(false);
  }

  /** adopt: the worker takes over the server core its predecessor left on the socket. */
  async #start(adopt: boolean): Promise<void> {
    this.#stopping = false;
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (event: ServeEvent) => this.#emit(event));
    const data: WorkerData = {
      heartbeat: this.#heartbeat.buffer as SharedArrayBuffer,
      events: port2,
    };
    const worker = new Worker(this.#workerUrl, { workerData: data, transferList: [port2] });
    let started = false;
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    worker.on('error', (err) => this.#event('worker-error', { message: err.message }));
    worker.on('exit', (code) => this.#onExit(worker, code, port1, started));
    this.#worker = worker;
    this.#remote = wrap<DeviceControl>(nodeEndpoint(worker));
    // A worker that dies (or is stopped) before it replies would leave the call pending forever.
    const code = await Promise.race([
      this.#remote.start(adopt ? { ...this.spec, adopt: true } : this.spec).then(() => undefined),
      exited,
    ]);
    if (code !== undefined || this.#worker !== worker) {
      const why = this.#stopping ? 'was stopped' : `exited with code ${code}`;
      throw new Error(`device ${this.spec.name}: its worker ${why} before the device started`);
    }
    started = true;
    this.#watch();
  }

  async stats(): Promise<DeviceRunStats | undefined> {
    const s = await this.#remote?.stats();
    return s ? { ...s, watchdogRestarts: this.#restarts } : undefined;
  }

  async reload(pluginPath: string): Promise<void> {
    if (!this.#remote) throw new Error(`device ${this.spec.name} is not running`);
    await this.#remote.reload(pluginPath);
    this.spec.pluginPath = pluginPath;
  }

  /** Stops the device (closing its socket) and the worker. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    const worker = this.#worker;
    this.#worker = undefined;
    if (!worker) return;
    const stopped = this.#remote?.stop().catch(() => undefined);
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000).unref())]);
    await worker.terminate();
    this.#release(); // a worker that could not close its server left the core behind
  }

  /** The worker is gone: the request it left in flight gets a fenced device's answer. */
  #fence(): void {
    try {
      const r = loadVfioUserNative().vfioUserFence(this.spec.socketPath);
      if (r.answered !== null) this.#event('fenced-reply', { command: r.answered });
    } catch (err) {
      this.#event('fence-failed', { message: (err as Error).message });
    }
  }

  /** Drops the core a terminated worker left (its client sees the connection close). */
  #release(): void {
    try {
      loadVfioUserNative().vfioUserClose(this.spec.socketPath);
    } catch (err) {
      this.#event('release-failed', { message: (err as Error).message });
    }
  }

  #watch(): void {
    if (this.#timer) clearInterval(this.#timer);
    const budget = watchdogLimitMs(this.spec);
    this.#timer = setInterval(() => {
      const busy = Atomics.load(this.#heartbeat, HB_BUSY) === 1;
      const seq = Atomics.load(this.#heartbeat, HB_SEQ);
      if (!busy) {
        this.#busySeq = -1;
        return;
      }
      const now = performance.now();
      if (seq !== this.#busySeq) {
        this.#busySeq = seq;
        this.#busySince = now;
      } else if (now - this.#busySince > budget) {
        this.#event('watchdog-overrun', {
          budgetMs: budget,
          ranMs: Math.round(now - this.#busySince),
        });
        void this.#restart();
      }
    }, WATCH_INTERVAL_MS);
  }

  async #restart(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    const worker = this.#worker;
    this.#worker = undefined;
    Atomics.store(this.#heartbeat, HB_BUSY, 0);
    this.#busySeq = -1;
    if (worker) await worker.terminate();
    this.#fence();
    if (this.#stopping) return this.#release();
    const delay = RESTART_BACKOFF_MS[Math.min(this.#consecutive, RESTART_BACKOFF_MS.length - 1)];
    this.#consecutive++;
    await new Promise((r) => setTimeout(r, delay));
    if (this.#stopping) return this.#release();
    this.#restarts++;
    try {
      await this.#start(true);
      this.#event('restarted', { restarts: this.#restarts });
    } catch (err) {
      if (this.#stopping) return; // stop() ended the new worker and releases the core
      this.#event('restart-failed', { message: (err as Error).message });
      this.#release(); // nobody will serve the client: let it see the connection close
    }
  }

  /** started: the worker had answered start(); one that dies before is #start's failure. */
  #onExit(worker: Worker, code: number, port: MessagePort, started: boolean): void {
    // What the worker posted just before it died is queued but not yet dispatched, and close()
    // would drop it: a config-state snapshot lost here would be missing from the next worker.
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      this.#emit(m.message as ServeEvent);
    }
    port.close();
    if (this.#worker !== worker) return; // terminated on purpose
    this.#worker = undefined;
    if (this.#stopping || !started) return;
    this.#event('worker-exit', { code });
    void this.#restart();
  }

  #event(event: string, extra: Record<string, unknown>): void {
    this.#emit({ event, device: this.spec.name, ...extra });
  }

  #emit(event: ServeEvent): void {
    if (event.event === CONFIG_STATE_EVENT) {
      if (event.bytes instanceof Uint8Array) this.spec.configState = event.bytes;
      return;
    }
    if (event.event === IRQ_STATE_EVENT) {
      if (isIrqSnapshot(event.state)) this.spec.irqState = event.state;
      return;
    }
    if (event.event === 'connect') this.#consecutive = 0;
    this.emit('event', event);
  }
}

function isIrqSnapshot(v: unknown): v is IrqSnapshot {
  const s = v as IrqSnapshot | undefined;
  return s?.msixTable instanceof Uint8Array && Array.isArray(s.clientMasked);
}

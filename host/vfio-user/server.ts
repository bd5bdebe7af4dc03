// SPDX-License-Identifier: MIT
// VfioUserServer: serves one DeviceModel over a vfio-user socket. The protocol (framing,
// VERSION, DMA maps, IRQ eventfds, bounds checks) is the native ServerCore's
// (native/src/vfio_user/); this facade maps the device model onto its callbacks, turns native
// failures into VfioError/ProtocolError and emits typed events. Requests are served on the
// thread that calls listen(), synchronously: no thread hop per access (DESIGN.md "Engines").
//
// Lifecycle (libvfio-user's order): construct (layout from the model) -> listen -> a client
// connects (device.attach) -> requests -> the client goes (device.detach; device state stays,
// [SPEC "Client Disconnection"]) -> the next client ... -> close.
//
// Surviving a watchdog restart (host/serve/supervisor.ts): the native core (listening socket,
// client connection, DMA maps, IRQ eventfds, the request in flight) belongs to the process. A
// `persistent` server in a worker leaves it behind when the worker is terminated; the main
// thread answers the request in flight as a fenced device (vfioUserFence) and the next
// worker's server `adopt`s the core: same client connection, same maps and eventfds, and what
// the client sent meanwhile is served in order. The memory of a device's memory areas lives in
// that core too (one sealed memfd per region, handed to the client for mmap): the plugin of
// the next worker sees the bytes the last one and the guest left.

import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import type { ByteStreamPeer, DeviceModel, DmaSpace, IrqSink } from '../device/types.js';
import { NUM_IRQS, NUM_REGIONS } from '../device/types.js';
import { PluginError, ProtocolError, VfioError } from '../errors.js';
import { createLogger } from '../log.js';
import { loadVfioUserNative } from '../native/binding.js';
import type {
  NativeVfioUserCallbacks,
  NativeVfioUserLayout,
  NativeVfioUserServer,
  NativeVfioUserServerStats,
} from '../native/types.js';
import { copyInto, WitError } from '../plugins/engine.js';
import { witErrorForErrno } from '../plugins/errno-map.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '../vfio/uapi.js';
import {
  IRQ_SET_ACTION_MASK,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_ACTION_UNMASK,
  IRQ_SET_DATA_EVENTFD,
  opName,
} from './protocol.js';

const log = createLogger('vfio-user');
const { EINVAL, EIO } = constants.errno;
const DEFAULT_MAX_DATA_XFER_SIZE = 1048576;

export interface VfioUserServerOptions {
  socketPath: string;
  /** the largest REGION_READ/WRITE and DMA transfer; default 1 MiB [SPEC "VFIO_USER_VERSION"] */
  maxDataXferSize?: number;
  /** default 65535 */
  maxDmaMaps?: number;
  /** where the device's byte-stream output goes (handed to device.attach) */
  stream?: ByteStreamPeer;
  /**
   * Reset the device when its client goes (default true), so the next VM sees a device in
   * power-on state. false keeps the device state across the reconnect, as the spec's
   * "Client Disconnection" describes for a client that comes back (e.g. a restarted VMM).
   */
  resetOnDisconnect?: boolean;
  /**
   * Take over the live core a terminated worker left on this socket path (see `persistent`),
   * with its client connection; the device model must have the same layout. Without such a
   * core, listen() binds as usual. Without adopt, that path is EADDRINUSE.
   */
  adopt?: boolean;
  /**
   * On a worker thread: if the worker goes away without close() (terminated), the core stays
   * open for vfioUserFence and an adopting server, instead of dropping the client. Ignored on
   * the main thread, whose environment only goes away with the process.
   */
  persistent?: boolean;
}

/** Counters of the server (see NativeVfioUserServerStats for each field). */
export type ServerStats = NativeVfioUserServerStats;

export interface DmaMapEvent {
  iova: bigint;
  sizeBytes: bigint;
  /** DMA_FLAG_READ | DMA_FLAG_WRITE */
  flags: number;
  /** false: the client gave no fd, so the device cannot reach this memory (EFAULT) */
  hasFd: boolean;
}

export interface DmaUnmapEvent {
  iova: bigint;
  sizeBytes: bigint;
}

export interface IrqStateEvent {
  index: number;
  start: number;
  count: number;
  /** VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_* of the client's DEVICE_SET_IRQS */
  flags: number;
}

export interface VfioUserServerEvents {
  connect: [];
  /** listen() adopted a core with a connected client: the device is attached to it */
  adopt: [];
  disconnect: [reason: string];
  'protocol-error': [error: ProtocolError];
  'dma-map': [event: DmaMapEvent];
  'dma-unmap': [event: DmaUnmapEvent];
  'irq-state': [event: IrqStateEvent];
}

/** The vfio-user region/IRQ tables for a model: vfio's PCI numbering, absent entries zero. */
export function layoutOf(device: DeviceModel): NativeVfioUserLayout {
  const numRegions = Math.max(NUM_REGIONS, ...device.regions.map((r) => r.index + 1));
  const numIrqs = Math.max(NUM_IRQS, ...device.irqs.map((i) => i.index + 1));
  const regions: NativeVfioUserLayout['regions'] = [];
  for (let i = 0; i < numRegions; i++) regions.push({ sizeBytes: 0, flags: 0 });
  for (const r of device.regions) {
    // region fds exist only for memory areas (the native core's memfd): the rest is trapped
    const flags = r.flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    if (r.memory && r.mmapAreas.length > 0) {
      const mmapAreas = r.mmapAreas.map((a) => ({ offset: a.offset, sizeBytes: a.sizeBytes }));
      regions[r.index] = { sizeBytes: r.sizeBytes, flags, mmapAreas, memory: true };
    } else {
      regions[r.index] = { sizeBytes: r.sizeBytes, flags };
    }
  }
  const irqs: NativeVfioUserLayout['irqs'] = [];
  for (let i = 0; i < numIrqs; i++) irqs.push({ count: 0, flags: 0 });
  for (const irq of device.irqs) irqs[irq.index] = { count: irq.count, flags: irq.flags };
  const flags = VFIO_DEVICE_FLAGS_PCI | (device.resetSupported ? VFIO_DEVICE_FLAGS_RESET : 0);
  return { flags, regions, irqs };
}

/** Views of the scratch buffer for accesses up to this many bytes are made once. */
const CACHED_VIEWS = 64;

/** A failed device callback: RangeError (outside the regions) is EINVAL, anything else EIO. */
function callbackErrno(what: string, err: unknown): number {
  if (err instanceof RangeError) return EINVAL;
  // The plugin returned an access error: its errno goes into the reply (errno-map.ts).
  if (err instanceof PluginError && err.kind === 'returned') return err.errno;
  log('%s threw: %s', what, err instanceof Error ? err.message : String(err));
  return EIO;
}

/** MASK/UNMASK/TRIGGER of a SET_IRQS without eventfds (DATA_NONE/BOOL) [VFIO-H]; else none. */
function irqAction(flags: number): 'mask' | 'unmask' | 'trigger' | undefined {
  if (flags & IRQ_SET_DATA_EVENTFD) return undefined;
  if (flags & IRQ_SET_ACTION_MASK) return 'mask';
  if (flags & IRQ_SET_ACTION_UNMASK) return 'unmask';
  if (flags & IRQ_SET_ACTION_TRIGGER) return 'trigger';
  return undefined;
}

function dmaError(err: unknown): never {
  if (err instanceof VfioError) {
    // EFAULT also when the client shrank the memory under its map (stats().dmaFaults counts it)
    log('device DMA failed: %s', err.message);
    throw new WitError(witErrorForErrno('dma-error', err.errno, 'not-mapped'), err.message);
  }
  throw err;
}

export class VfioUserServer extends EventEmitter<VfioUserServerEvents> {
  readonly #device: DeviceModel;
  readonly #native: NativeVfioUserServer;
  readonly #scratch: Uint8Array;
  /** #views[n] = scratch[0, n): no allocation per access on the request path */
  readonly #views: Uint8Array[];
  readonly #stream: ByteStreamPeer | undefined;
  readonly #resetOnDisconnect: boolean;
  #attached = false;

  constructor(device: DeviceModel, opts: VfioUserServerOptions) {
    super();
    if (typeof opts.socketPath !== 'string' || opts.socketPath === '') {
      throw new TypeError(`socketPath: expected a non-empty string, received ${opts.socketPath}`);
    }
    this.#device = device;
    this.#stream = opts.stream;
    this.#resetOnDisconnect = opts.resetOnDisconnect ?? true;
    const maxDataXferSize = opts.maxDataXferSize ?? DEFAULT_MAX_DATA_XFER_SIZE;
    this.#scratch = new Uint8Array(maxDataXferSize);
    this.#views = [];
    for (let n = 0; n <= CACHED_VIEWS; n++) this.#views.push(this.#scratch.subarray(0, n));
    const native = loadVfioUserNative();
    this.#native = new native.VfioUserServer(
      opts.socketPath,
      layoutOf(device),
      this.#callbacks(),
      this.#scratch,
      {
        maxDataXferSize,
        ...(opts.maxDmaMaps === undefined ? {} : { maxDmaMaps: opts.maxDmaMaps }),
        adopt: opts.adopt ?? false,
        persistent: (opts.persistent ?? false) && !isMainThread,
      },
    );
  }

  /**
   * Binds (EADDRINUSE if a live server answers; a stale socket is replaced), or with `adopt`
   * takes over a core left on the path, and serves.
   */
  listen(): void {
    this.#native.listen();
    // the core's memfds hold the memory areas (an adopted core's keep what the plugin wrote)
    if (this.#device.regions.some((r) => r.memory)) {
      const native = this.#native;
      this.#device.bindMemory?.({
        read: (region, offset, len) => native.memoryRead(region, offset, len),
        write: (region, offset, data) => native.memoryWrite(region, offset, data),
      });
    }
    // a wasmtime plugin's BAR accesses are answered by the native server itself
    const native = this.#native;
    this.#device.bindDirect?.((route) => {
      if (route) native.setDirect(route.target, route.bars, route.exclude, route.dma);
      else native.setDirect(null, 0, []);
    });
  }

  /** Idempotent: drops the client (device.detach, DMA unmapped, fds closed), unlinks the socket. */
  close(): void {
    this.#device.bindDirect?.(undefined);
    this.#native.close();
    this.#device.bindMemory?.(undefined);
  }

  get connected(): boolean {
    return this.#native.connected;
  }

  /** Drops the current client as if it had disconnected; false if there was none. */
  disconnectClient(): boolean {
    return this.#native.disconnectClient();
  }

  stats(): ServerStats {
    return this.#native.stats();
  }

  #callbacks(): NativeVfioUserCallbacks {
    const device = this.#device;
    const views = this.#views;
    const scratch = this.#scratch;
    const view = (count: number) =>
      (count <= CACHED_VIEWS ? views[count] : undefined) ?? scratch.subarray(0, count);
    return {
      regionRead: (region, offset, count) => {
        try {
          device.read(region, offset, view(count));
          return 0;
        } catch (err) {
          return callbackErrno('read', err);
        }
      },
      regionWrite: (region, offset, count) => {
        try {
          device.write(region, offset, view(count));
          return 0;
        } catch (err) {
          return callbackErrno('write', err);
        }
      },
      reset: () => {
        try {
          device.reset();
          return 0;
        } catch (err) {
          return callbackErrno('reset', err);
        }
      },
      onConnect: (adopted) => this.#onConnect(adopted),
      onDisconnect: (reason) => this.#onDisconnect(reason),
      onIrqState: (index, start, count, flags) => {
        const action = irqAction(flags);
        if (action && device.irqState) {
          try {
            device.irqState(index, start, count, action);
          } catch (err) {
            log('irqState threw: %s', err instanceof Error ? err.message : String(err));
          }
        }
        this.emit('irq-state', { index, start, count, flags });
      },
      onDmaMap: (iova, sizeBytes, flags, hasFd) =>
        this.emit('dma-map', { iova, sizeBytes, flags, hasFd }),
      onDmaUnmap: (iova, sizeBytes) => this.emit('dma-unmap', { iova, sizeBytes }),
      onProtocolError: (command, errno, message) =>
        this.emit('protocol-error', new ProtocolError(opName(command), errno, message)),
    };
  }

  #onConnect(adopted: boolean): void {
    const native = this.#native;
    const irq: IrqSink = {
      trigger: (index, subindex) => {
        try {
          return native.triggerIrq(index, subindex);
        } catch (err) {
          if (err instanceof RangeError) return false; // no such IRQ in the layout
          throw err;
        }
      },
    };
    const dma: DmaSpace = {
      read: (iova, len) => {
        try {
          return native.dmaRead(iova, len);
        } catch (err) {
          return dmaError(err);
        }
      },
      write: (iova, data) => {
        try {
          native.dmaWrite(iova, data);
        } catch (err) {
          dmaError(err);
        }
      },
      // One copy between the client's memory and the plugin's (an engine's DmaTarget), checked
      // before the plugin allocates: a block it never receives would leak (and stop a bump
      // allocator from rewinding). Only a client shrinking its memory in between fails the copy
      // after the allocation. Maps without fd go by message, through dmaRead.
      readInto: (iova, len, target) => {
        try {
          if (!native.dmaCheck(iova, len, false))
            return copyInto(native.dmaRead(iova, len), target);
          const at = target.alloc(len);
          native.dmaReadInto(iova, target.memory(), at, len);
          return at;
        } catch (err) {
          return dmaError(err);
        }
      },
      writeFrom: (iova, memory, offset, len) => {
        try {
          native.dmaWriteFrom(iova, memory, offset, len);
        } catch (err) {
          dmaError(err);
        }
      },
    };
    this.#device.attach(this.#stream ? { irq, dma, stream: this.#stream } : { irq, dma });
    this.#attached = true;
    log(adopted ? 'adopted a connected client' : 'client connected');
    this.emit(adopted ? 'adopt' : 'connect');
  }

  #onDisconnect(reason: string): void {
    if (this.#attached) {
      this.#attached = false;
      this.#device.detach();
      if (this.#resetOnDisconnect) {
        try {
          this.#device.reset();
        } catch (err) {
          log('reset after disconnect threw: %s', err instanceof Error ? err.message : String(err));
        }
      }
    }
    log('client disconnected: %s', reason);
    this.emit('disconnect', reason);
  }
}

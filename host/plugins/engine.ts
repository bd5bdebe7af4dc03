// SPDX-License-Identifier: MIT
// The engine interface: what the host needs from any WebAssembly engine that runs a device
// plugin (V8 through jco's glue, wasmtime embedded in the native core). Engines know
// nothing about grants, fencing or transports: they compile a component, instantiate it against
// already grant-checked host imports, and turn every way a call can go wrong into one of two
// outcomes: a returned WIT error (`WitError`) or a plugin fault (`PluginError`, kind 'trap').
//
// Types mirror `wit/vfiobox-device/0.1.2` (0.1.0 plus memory areas in 0.1.1 and DMA windows in
// 0.1.2) in jco's naming (camelCase fields, enum cases as kebab-case strings, `u64` as bigint,
// `option<T>` as `T | undefined`).

/** The WIT world a plugin targets (wit/vfiobox-device/<ver>/worlds.wit). */
export type World = 'emulated-device' | 'passthrough-variant' | 'emulated-device-with-memory';

/** `x.y.z` of the `vfiobox:device` package a plugin was built against. */
export type AbiVersion = `${number}.${number}.${number}`;

/** Region-access width in bytes (`device.region-read`). */
export type AccessWidth = 1 | 2 | 4 | 8;
/** Config-access width in bytes (`device.config-read`). */
export type ConfigWidth = 1 | 2 | 4;

export type BarKind = 'mem32' | 'mem64' | 'io';
export type IntxPin = 'a' | 'b' | 'c' | 'd';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type AccessErrorCode =
  | 'invalid-width'
  | 'out-of-range'
  | 'not-granted'
  | 'unsupported'
  | 'device-error';
export type DmaErrorCode = 'not-mapped' | 'not-granted' | 'access-denied' | 'too-large';
export type IrqErrorCode = 'invalid-vector' | 'not-granted';
/** `types.window-error` (0.1.2): why `dma.map-window` or `dma.unmap-window` failed. */
export type WindowErrorCode =
  | 'not-mapped'
  | 'not-granted'
  | 'access-denied'
  | 'invalid-range'
  | 'busy'
  | 'too-many'
  | 'unsupported';

export interface BarDescription {
  index: number;
  sizeBytes: bigint;
  kind: BarKind;
  prefetchable: boolean;
}

export interface MsixLayout {
  vectors: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}

export interface IrqDescription {
  intx: IntxPin | undefined;
  msiVectors: number;
  msix: MsixLayout | undefined;
}

export interface ClaimedRange {
  bar: number;
  offset: bigint;
  lengthBytes: bigint;
}

/** `types.memory-area` (0.1.1): a memory-backed area of a BAR. Untrusted: validate first. */
export interface MemoryArea {
  bar: number;
  offset: bigint;
  lengthBytes: bigint;
}

/** `types.device-description`: what `describe()` returns. Untrusted: validate before use. */
export interface DeviceDescription {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  classCode: number;
  revision: number;
  bars: BarDescription[];
  irqs: IrqDescription;
  claimedRanges: ClaimedRange[];
}

/**
 * A WIT-level error travelling across the plugin boundary in either direction:
 * - a host import throws it to make the plugin's call return `err(code)`;
 * - an engine throws it when a plugin export returned `err(code)` (for `load-state`, `code` is
 *   the plugin's message).
 * It is not a fault: the device keeps running. Faults are `PluginError` (host/errors.ts).
 */
export class WitError extends Error {
  readonly code: string;
  constructor(code: string, message?: string) {
    super(message ?? code);
    this.name = 'WitError';
    this.code = code;
  }
}

/**
 * A plugin's linear memory, lent by the engine for one dma call so that the bytes move once
 * (host/plugins/engines/v8-dma.ts); DmaSpace.readInto in host/device/types.ts.
 */
export interface DmaTarget {
  /** Allocates `len` bytes inside the plugin (its cabi_realloc) and returns their offset. */
  alloc(len: number): number;
  /** The memory's buffer now; read it after alloc, which may grow (and so replace) it. */
  memory(): ArrayBuffer;
}

/** read() and one copy into the target: the fallback for a host without readInto. */
export function copyInto(data: Uint8Array, target: DmaTarget): number {
  const at = target.alloc(data.length);
  new Uint8Array(target.memory(), at, data.length).set(data);
  return at;
}

/** A copy of memory[offset, offset + len) (RangeError outside it): fallback of writeFrom. */
export function copyOut(memory: ArrayBuffer, offset: number, len: number): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0 || len < 0 || offset + len > memory.byteLength) {
    throw new RangeError(`[${offset}, +${len}) is outside the ${memory.byteLength}-byte memory`);
  }
  return new Uint8Array(memory.slice(offset, offset + len));
}

/**
 * The host side of the world's imports, one object per WIT interface, already wrapped by the
 * grant checks (host/plugins/grants.ts). Functions whose WIT result has an error case throw
 * `WitError(code)` for it. Anything else thrown is a host bug and becomes a trap.
 */
export interface HostImports {
  irq: {
    raise(vector: number): void;
    lower(vector: number): void;
    isMasked(vector: number): boolean;
  };
  dma: {
    read(iova: bigint, len: number): Uint8Array;
    write(iova: bigint, data: Uint8Array): void;
    /** Optional: read straight into the plugin's memory (DmaSpace.readInto). */
    readInto?(iova: bigint, len: number, target: DmaTarget): number;
    /** Optional: write straight from the plugin's memory (DmaSpace.writeFrom). */
    writeFrom?(iova: bigint, memory: ArrayBuffer, offset: number, len: number): void;
    // `map-window` and `unmap-window` (0.1.2) are not here: they map guest memory over the
    // plugin's linear memory, which only an engine can do. The wasmtime engine answers them
    // natively; every other engine answers err(unsupported) (v8-imports.ts).
  };
  log: { log(level: LogLevel, message: string): void };
  clock: {
    nowNs(): bigint;
    setTimer(id: number, delayNs: bigint): void;
    cancelTimer(id: number): void;
  };
  byteStream: {
    write(data: Uint8Array): number;
    read(maxLen: number): Uint8Array;
  };
  /** Present only for the passthrough-variant world. */
  region?: {
    read(bar: number, offset: bigint, width: AccessWidth): bigint;
    write(bar: number, offset: bigint, width: AccessWidth, value: bigint): void;
  };
  /** `shared-memory` (0.1.1): the plugin's own memory areas; errors are access-error cases. */
  sharedMemory?: {
    read(bar: number, offset: bigint, len: number): Uint8Array;
    write(bar: number, offset: bigint, data: Uint8Array): void;
  };
}

/**
 * One live instance of a plugin: the `device` export, called synchronously on the thread that
 * instantiated it. Every method either returns, throws `WitError` (the export returned an
 * error case), or throws `PluginError` with kind 'trap' (trap, stack overflow, out of memory,
 * a host import that threw something other than WitError). After a trap the instance is
 * poisoned: the caller discards it and instantiates a fresh one.
 */
export interface PluginInstance {
  describe(): DeviceDescription;
  configRead(offset: number, width: ConfigWidth): number;
  configWrite(offset: number, width: ConfigWidth, value: number): void;
  regionRead(bar: number, offset: bigint, width: AccessWidth): bigint;
  regionWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void;
  reset(): void;
  timer(id: number): void;
  saveState(): Uint8Array;
  loadState(state: Uint8Array): void;
  streamReady(): void;
  /**
   * `memory-areas.areas` (0.1.1). Absent for a plugin that does not export it (every world
   * but emulated-device-with-memory): the device has no memory areas.
   */
  memoryAreas?(): MemoryArea[];
  /** Drops the instance; later calls throw PluginError. Idempotent. */
  dispose(): void;
  /** Current size of the plugin's linear memory in bytes, where the engine can tell. */
  memoryBytes?(): number;
  /**
   * The engine's native handle of this instance, for a transport that calls region-read and
   * region-write itself without JS (wasmtime: the NativeWasmInstance; absent on V8). Such
   * calls follow the same rules; one that does not return is retried through the model.
   */
  readonly native?: unknown;
}

export interface InstanceLimits {
  /** Cap on the plugin's linear memory (every memory of every core module), in bytes. */
  memoryBytes: number;
  /**
   * Per-call wall-clock budget in ms (0 or absent: none), enforced by engines that can
   * interrupt a call on its own thread (wasmtime: an overrun is a trap). V8 ignores it: there
   * the worker watchdog (host/serve/supervisor.ts) stops a runaway call.
   */
  budgetMs?: number | undefined;
}

/** A compiled component, ready to instantiate any number of times. */
export interface CompiledPlugin {
  readonly engine: EngineName;
  /** Versions read from the component's import/export names (`vfiobox:device/irq@0.1.0`). */
  readonly abi: AbiVersion;
  readonly world: World;
  /** Unversioned interface names the component imports: 'irq', 'dma', 'log', ... */
  readonly imports: readonly string[];
  instantiate(host: HostImports, limits: InstanceLimits): PluginInstance;
}

export type EngineName = 'v8' | 'wasmtime';

export interface Engine {
  readonly name: EngineName;
  /**
   * Compiles (or loads from the on-disk cache, keyed by the component's sha256). `name` is the
   * plugin's name in PluginError messages (default: derived from the sha256).
   */
  compile(
    component: Uint8Array,
    options?: { cacheDir?: string | undefined; name?: string | undefined },
  ): Promise<CompiledPlugin>;
}

// SPDX-License-Identifier: MIT
// The wasmtime engine: wasmtime's C API embedded in the native core (native/src/wasm/; the
// contract is wasmtime-native.ts), so a plugin call is one C call that never enters V8, and
// what V8 cannot do on the calling thread is done natively:
// - a per-call budget (InstanceLimits.budgetMs, epoch interruption): an overrun is a trap that
//   fences the device, with no worker to terminate;
// - the memory cap by a store limiter, so the component is not rewritten;
// - an on-disk cache of the compiled artifact, <root>/wasmtime-<version>/<sha256>.cwasm, keyed
//   by the wasmtime version linked in and the component's sha256; the native side checksums
//   the file and writes it atomically, and compiles afresh when it is damaged.
// It offers no WASI: a component importing any WASI interface (a componentize-js plugin) is
// refused at compile, pointing at the V8 engine, which answers WASI with its deny-by-default
// shim (host/plugins/wasi/).
//
// Around the native instance, WasmtimeInstance is the error boundary of engine.ts, shared with
// the V8 engine (instance-errors.ts): a NativeWasmFailure of kind 'wit' is the export's returned
// err(code) -> WitError; 'trap' and 'invalid' poison the instance -> PluginError of that kind.

import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PluginError, VfioError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadNative } from '../../native/binding.js';
import type { ComponentAbi } from '../abi.js';
import type {
  CompiledPlugin,
  Engine,
  HostImports,
  InstanceLimits,
  MemoryArea,
  PluginInstance,
} from '../engine.js';
import { componentMemories, type MemoryLimits, memoryCapRefusal } from '../wasm-binary.js';
import { readCompileInput } from './compile-input.js';
import { GuardedInstance } from './guarded-instance.js';
import {
  checkInstantiate,
  errorText,
  exportWitError,
  faultMessage,
  InstanceLife,
} from './instance-errors.js';
import type {
  NativeWasmComponent,
  NativeWasmFailure,
  NativeWasmInstance,
  NativeWasmtime,
} from './wasmtime-native.js';

const log = createLogger('plugins');

export interface WasmtimeCompileOptions {
  /** root of the artifact cache; default $VFIOBOX_CACHE/wasmtime or ~/.cache/vfiobox/wasmtime */
  cacheDir?: string | undefined;
  /** the plugin's name in errors; default `plugin-<sha256 prefix>` */
  name?: string | undefined;
}

/** The longest budget the native side takes (a u32 of milliseconds). */
const MAX_BUDGET_MS = 0xffff_ffff;

/** $VFIOBOX_CACHE/wasmtime, or ~/.cache/vfiobox/wasmtime. */
export function defaultWasmtimeCacheRoot(): string {
  return join(process.env.VFIOBOX_CACHE ?? join(homedir(), '.cache', 'vfiobox'), 'wasmtime');
}

/**
 * Where the native side keeps the artifact of component `sha256`; undefined when the directory
 * cannot be made, and then the component is compiled without a cache (it is an optimisation).
 */
async function artifactPath(root: string, version: string, sha256: string) {
  const dir = join(root, `wasmtime-${version}`);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    log('no wasmtime cache in %s: %s', dir, String(err));
    return undefined;
  }
  return join(dir, `${sha256}.cwasm`);
}

/** Whether `err` is what a failed native wasmtime call throws. */
export function isNativeWasmFailure(err: unknown): err is NativeWasmFailure {
  return err instanceof Error && typeof (err as { vfioboxKind?: unknown }).vfioboxKind === 'string';
}

function noEngine(plugin: string, why?: string): PluginError {
  const detail = why ? ` (${why})` : '';
  return new PluginError(
    plugin,
    'load',
    'unsupported',
    `this build has no wasmtime engine: run bash scripts/setup.sh${detail}`,
  );
}

/** The addon's wasmtime export, or PluginError unsupported naming the fix. */
function loadWasmtime(plugin: string): NativeWasmtime {
  let wasmtime: NativeWasmtime | undefined;
  try {
    wasmtime = loadNative('linux').wasmtime;
  } catch (err) {
    if (err instanceof VfioError && err.code === 'ERR_VFIO_ADDON_NOT_FOUND') {
      throw noEngine(plugin, err.message);
    }
    throw err;
  }
  if (!wasmtime) throw noEngine(plugin);
  return wasmtime;
}

function refuseWasi(plugin: string, wasiImports: readonly string[]): void {
  if (wasiImports.length === 0) return;
  const shown = wasiImports.slice(0, 3).join(', ');
  const more = wasiImports.length > 3 ? ` and ${wasiImports.length - 3} more` : '';
  throw new PluginError(
    plugin,
    'load',
    'unsupported',
    `imports WASI (${shown}${more}), which the wasmtime engine does not offer: ` +
      'WASI-importing plugins (componentize-js) run on the v8 engine (--engine v8)',
  );
}

/**
 * The wasmtime engine over a given native side; `wasmtimeEngine` is this over the addon's.
 * Tests pass a fake native side to exercise the error boundary without the addon.
 */
export function wasmtimeEngineOver(native: (plugin: string) => NativeWasmtime): Engine {
  return {
    name: 'wasmtime',
    async compile(component, options: WasmtimeCompileOptions = {}) {
      const input = readCompileInput(component, options.name);
      refuseWasi(input.name, input.wasiImports);
      let memories: MemoryLimits[];
      try {
        memories = componentMemories(component);
      } catch (err) {
        throw new PluginError(input.name, 'load', 'invalid', errorText(err));
      }
      const wasmtime = native(input.name);
      const root = options.cacheDir ?? defaultWasmtimeCacheRoot();
      const cachePath = await artifactPath(root, wasmtime.version, input.sha256);
      let compiled: NativeWasmComponent;
      try {
        compiled = await wasmtime.compile(component, cachePath);
      } catch (err) {
        if (!isNativeWasmFailure(err)) throw err;
        throw new PluginError(input.name, 'load', 'invalid', err.message);
      }
      return new WasmtimeCompiledPlugin(input.name, input.abi, compiled, memories);
    },
  };
}

/**
 * The wasmtime engine over vfio_core.node's `wasmtime` export. compile() refuses with
 * PluginError kind 'unsupported' when the addon was built without it, and for any component
 * importing WASI (those run on v8Engine).
 */
export const wasmtimeEngine: Engine = wasmtimeEngineOver(loadWasmtime);

function checkBudget(budgetMs: number | undefined): number {
  const ms = budgetMs ?? 0;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_BUDGET_MS) {
    throw new RangeError(`limits.budgetMs: expected whole milliseconds (0: none), got ${ms}`);
  }
  return ms;
}

class WasmtimeCompiledPlugin implements CompiledPlugin {
  readonly engine = 'wasmtime' as const;
  readonly abi: ComponentAbi['abi'];
  readonly world: ComponentAbi['world'];
  readonly imports: readonly string[];

  constructor(
    readonly name: string,
    abi: ComponentAbi,
    readonly native: NativeWasmComponent,
    readonly memories: readonly MemoryLimits[],
  ) {
    this.abi = abi.abi;
    this.world = abi.world;
    this.imports = Object.freeze([...abi.imports]);
  }

  instantiate(host: HostImports, limits: InstanceLimits): PluginInstance {
    checkInstantiate(this.name, this.world, host, limits);
    const budgetMs = checkBudget(limits.budgetMs);
    // Refused here, as the V8 engine does, rather than as whatever the store limiter reports.
    const refusal = memoryCapRefusal(this.memories, limits.memoryBytes);
    if (refusal) throw new PluginError(this.name, 'instantiate', 'denied', refusal);
    // The native side reads a cap of 0 as "no cap"; a cap of 1 byte allows the same whole
    // pages as 0 does (none).
    const memoryBytes = Math.max(limits.memoryBytes, 1);
    let inner: NativeWasmInstance;
    try {
      inner = this.native.instantiate(host, { abi: this.abi, memoryBytes, budgetMs });
    } catch (err) {
      const kind = isNativeWasmFailure(err) && err.vfioboxKind === 'trap' ? 'trap' : 'invalid';
      const message = isNativeWasmFailure(err) ? err.message : errorText(err);
      const error = new PluginError(this.name, 'instantiate', kind, message);
      error.cause = err;
      throw error;
    }
    return new WasmtimeInstance(this.name, inner, limits.memoryBytes);
  }
}

/**
 * The engine.ts instance over one native instance (one wasmtime store). The success path is
 * the state check and the native call: no closure, no allocation of its own.
 */
class WasmtimeInstance extends GuardedInstance<NativeWasmInstance> implements PluginInstance {
  readonly #life: InstanceLife;
  readonly #inner: NativeWasmInstance;

  constructor(
    readonly name: string,
    inner: NativeWasmInstance,
    readonly memoryCapBytes: number,
  ) {
    super();
    this.#life = new InstanceLife(name);
    this.#inner = inner;
  }

  /**
   * PluginInstance.native: the native instance, for a transport that calls region-read and
   * region-write without JS; undefined once poisoned or disposed (it must not be called then).
   */
  get native(): NativeWasmInstance | undefined {
    return this.#life.live ? this.#inner : undefined;
  }

  protected live(exportName: string): NativeWasmInstance {
    if (!this.#life.live) throw this.#life.dead(exportName);
    return this.#inner;
  }

  /** Turns what a call threw into WitError (the export's returned err) or a poisoning fault. */
  protected fail(exportName: string, err: unknown): Error {
    const native = isNativeWasmFailure(err);
    if (native && err.vfioboxKind === 'wit') {
      const returned = exportWitError(exportName, err.code);
      if (returned) return returned;
    }
    const kind = native && err.vfioboxKind === 'invalid' ? 'invalid' : 'trap';
    const text = native ? err.message : errorText(err);
    const error = new PluginError(
      this.name,
      exportName,
      kind,
      faultMessage(text, this.memoryBytes(), this.memoryCapBytes),
    );
    error.cause = err;
    this.#life.poison(error.message);
    return error;
  }

  memoryAreas(): MemoryArea[] {
    const inner = this.live('memory-areas.areas');
    try {
      // undefined: the component exports no memory-areas, so the device has none
      return inner.memoryAreas() ?? [];
    } catch (err) {
      throw this.fail('memory-areas.areas', err);
    }
  }

  /** Bytes of the plugin's linear memory now; 0 once disposed (its store is gone). */
  memoryBytes(): number {
    if (this.#life.disposed) return 0;
    try {
      return this.#inner.memoryBytes();
    } catch {
      return 0; // only asked for stats and messages: never a reason to fail
    }
  }

  dispose(): void {
    this.#life.dispose();
    this.#inner.dispose();
  }
}

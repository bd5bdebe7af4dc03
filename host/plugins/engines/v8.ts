// SPDX-License-Identifier: MIT
// The V8 engine: a component transpiled by jco 1.12 into JS glue plus core modules, run in the
// calling thread (DESIGN.md "Engines"). Around the glue:
// - jco-cache.ts: the transpile and its on-disk cache (a cached cold start loads no jco);
// - a memory cap: every core module's memory maximum is rewritten before compiling
//   (wasm-binary.ts), because V8 has no store limiter and Worker resourceLimits do not cover
//   wasm memory; compiled modules are kept per cap, so a restart does not recompile;
// - dma.read/dma.write lowered by the engine itself (v8-dma.ts), so their bytes move once;
// - the error boundary of engine.ts: a WitError from the host becomes the `{ payload }` the glue
//   turns into `err(code)` (v8-imports.ts); an `err` an export returns (the glue throws an Error
//   with an own `payload`) becomes a WitError; a trap, a stack overflow, or a host import that
//   threw anything else becomes PluginError kind 'trap' and poisons the instance (V8Instance).
// V8 cannot interrupt a plugin that loops on this thread: the worker watchdog does that
// (host/serve/supervisor.ts).
//
// Cost of the wrapper, measured with test/plugins/bench-v8.mjs on build/plugins/edu.wasm (10^6
// calls after warm-up, median of 5 runs, Node 20.20, this noisy 2-core VM, two runs each):
//   region-read of ident (no host import):  raw glue 50.4 / 50.2 ns, V8Instance 45.9 / 47.3 ns
//   region-write of irq ack (irq.lower):    raw glue 45.5 / 79.6 ns, V8Instance 45.0 / 72.8 ns
// i.e. the state check and try/catch cost nothing measurable (below the run-to-run noise of a
// few ns). The success path allocates nothing of its own; the glue allocates its result variant.

import { PluginError } from '../../errors.js';
import type { ComponentAbi } from '../abi.js';
import type {
  CompiledPlugin,
  Engine,
  HostImports,
  InstanceLimits,
  MemoryArea,
  PluginInstance,
} from '../engine.js';
import { capModuleMemory } from '../wasm-binary.js';
import { readCompileInput } from './compile-input.js';
import { GuardedInstance } from './guarded-instance.js';
import {
  checkInstantiate,
  errorText,
  exportWitError,
  faultMessage,
  InstanceLife,
} from './instance-errors.js';
import {
  defaultCacheRoot,
  type GlueDevice,
  type GlueInstantiate,
  type GlueMemoryAreas,
  loadGlue,
} from './jco-cache.js';
import { DmaLowering } from './v8-dma.js';
import { bindImports } from './v8-imports.js';
import { type WasmInstance, type WasmMemory, type WasmModule, wasm } from './wasm-api.js';

export { defaultCacheRoot } from './jco-cache.js';

export interface V8CompileOptions {
  /** root of the transpile cache; default $VFIOBOX_CACHE/jco or ~/.cache/vfiobox/jco */
  cacheDir?: string | undefined;
  /** the plugin's name in errors; default `plugin-<sha256 prefix>` */
  name?: string | undefined;
}

export const v8Engine: Engine = {
  name: 'v8',
  async compile(component: Uint8Array, options: V8CompileOptions = {}): Promise<CompiledPlugin> {
    const { sha256, name, abi } = readCompileInput(component, options.name);
    const glue = await loadGlue(component, sha256, options.cacheDir ?? defaultCacheRoot());
    return new V8CompiledPlugin(name, abi, glue.instantiate, glue.coreBytes);
  },
};

class V8CompiledPlugin implements CompiledPlugin {
  readonly engine = 'v8' as const;
  readonly abi: ComponentAbi['abi'];
  readonly world: ComponentAbi['world'];
  readonly imports: readonly string[];
  readonly #modulesByCap = new Map<number, Map<string, WasmModule>>();

  constructor(
    readonly name: string,
    abi: ComponentAbi,
    readonly glue: GlueInstantiate,
    readonly coreBytes: ReadonlyMap<string, Uint8Array>,
  ) {
    this.abi = abi.abi;
    this.world = abi.world;
    this.imports = Object.freeze([...abi.imports]);
  }

  /** The core modules compiled with every memory capped at `capBytes`; compiled once per cap. */
  #modules(capBytes: number): Map<string, WasmModule> {
    const cached = this.#modulesByCap.get(capBytes);
    if (cached) return cached;
    const modules = new Map<string, WasmModule>();
    for (const [file, bytes] of this.coreBytes) {
      let capped: ReturnType<typeof capModuleMemory>;
      try {
        capped = capModuleMemory(bytes, capBytes);
      } catch (err) {
        throw new PluginError(this.name, 'instantiate', 'invalid', `${file}: ${String(err)}`);
      }
      if (!capped.ok) throw new PluginError(this.name, 'instantiate', 'denied', capped.reason);
      modules.set(file, new wasm.Module(capped.bytes));
    }
    this.#modulesByCap.set(capBytes, modules);
    return modules;
  }

  /** limits.budgetMs is ignored: V8 cannot interrupt this thread (the worker watchdog does). */
  instantiate(host: HostImports, limits: InstanceLimits): PluginInstance {
    checkInstantiate(this.name, this.world, host, limits);
    const modules = this.#modules(limits.memoryBytes);
    const instance = new V8Instance(this.name, limits.memoryBytes);
    const getCoreModule = (file: string) => {
      const module = modules.get(file);
      if (!module)
        throw new PluginError(this.name, 'instantiate', 'invalid', `no core module ${file}`);
      return module;
    };
    const dma = new DmaLowering(host.dma, instance);
    instance.start(() =>
      this.glue(getCoreModule, bindImports(host, instance), (module, imports) => {
        const core = new wasm.Instance(module, dma.imports(module, imports));
        dma.bind(core);
        return instance.noteCore(core);
      }),
    );
    return instance;
  }
}

class V8Instance extends GuardedInstance<GlueDevice> implements PluginInstance {
  readonly #life: InstanceLife;
  #device: GlueDevice | undefined;
  #areas: GlueMemoryAreas | undefined;
  #memory: WasmMemory | undefined;
  /** Set by a host import that failed with something other than a WitError. */
  #hostFault: string | undefined;

  constructor(
    readonly name: string,
    readonly memoryCapBytes: number,
  ) {
    super();
    this.#life = new InstanceLife(name);
  }

  start(run: () => { device?: GlueDevice; memoryAreas?: GlueMemoryAreas }): void {
    try {
      const exports = run();
      if (!exports.device) throw new Error('the glue returned no device export');
      this.#device = exports.device;
      this.#areas = exports.memoryAreas;
    } catch (err) {
      this.#life.poison('');
      throw err instanceof PluginError
        ? err
        : this.#fault('instantiate', err instanceof wasm.RuntimeError ? 'trap' : 'invalid', err);
    }
  }

  noteCore(instance: WasmInstance): WasmInstance {
    const memory = instance.exports.memory;
    if (!this.#memory && memory instanceof wasm.Memory) this.#memory = memory;
    return instance;
  }

  noteHostFault(what: string, err: unknown): void {
    this.#hostFault ??= `host import ${what} threw ${errorText(err)}`;
  }

  /** Bytes of the plugin's main linear memory now (for stats and tests). */
  memoryBytes(): number {
    return this.#memory?.buffer.byteLength ?? 0;
  }

  #fault(exportName: string, kind: 'trap' | 'invalid', err: unknown): PluginError {
    const text = this.#hostFault ?? errorText(err);
    const message = faultMessage(text, this.memoryBytes(), this.memoryCapBytes);
    const error = new PluginError(this.name, exportName, kind, message);
    error.cause = err;
    return error;
  }

  /** Turns what an export call threw into WitError (a returned `err`) or a poisoning trap. */
  protected fail(exportName: string, err: unknown): Error {
    if (this.#hostFault === undefined && err instanceof Error && Object.hasOwn(err, 'payload')) {
      const returned = exportWitError(exportName, (err as Error & { payload: unknown }).payload);
      if (returned) return returned;
    }
    const error = this.#fault(exportName, 'trap', err);
    this.#life.poison(error.message);
    return error;
  }

  protected live(exportName: string): GlueDevice {
    const device = this.#device;
    if (!this.#life.live || !device) throw this.#life.dead(exportName);
    return device;
  }

  memoryAreas(): MemoryArea[] {
    this.live('memory-areas.areas');
    const areas = this.#areas;
    if (!areas) return [];
    try {
      return areas.areas();
    } catch (err) {
      throw this.fail('memory-areas.areas', err);
    }
  }

  dispose(): void {
    this.#life.dispose();
    this.#device = undefined;
    this.#areas = undefined;
    this.#memory = undefined;
  }
}

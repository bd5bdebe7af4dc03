// SPDX-License-Identifier: MIT
// Shared pieces of the plugins tier: the engine it runs on, where the built fixture components
// are, a shared compile cache, and a recording fake of the host imports.
//
// The engine comes from VFIOBOX_ENGINE (default v8): test/run.mjs runs the same files as tier
// `plugins` on V8 and as tier `plugins-wasmtime` on wasmtime, so both pass the same tests.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Callback, Test } from 'uvu';
import type {
  CompiledPlugin,
  Engine,
  EngineName,
  HostImports,
  LogLevel,
} from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import { engineByName, isEngineName } from '../../host/plugins/engines/index.js';

function engineFromEnv(value: string | undefined): Engine {
  if (value === undefined || value === '') return engineByName('v8');
  if (!isEngineName(value)) throw new Error(`VFIOBOX_ENGINE must be v8 or wasmtime (got ${value})`);
  return engineByName(value);
}

/** The engine this run of the tier compiles every fixture with. */
export const engine: Engine = engineFromEnv(process.env.VFIOBOX_ENGINE);

/** The repository root (this file runs from build/test/plugins/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** An engine's compile cache for the tests: keyed by sha256, so a rebuilt plugin never hits a stale entry. */
export function cacheDirOf(name: EngineName): string {
  return join(ROOT, 'build', 'cache', name === 'v8' ? 'jco' : name);
}

/** The compile cache of `engine`. */
export const CACHE_DIR = cacheDirOf(engine.name);

/**
 * For tests of one engine's own machinery (V8: jco's glue, the dma lowering, the transpile
 * cache; wasmtime: its budget and artifact cache): `test` on that engine's tier, and not
 * registered at all on the other's, where it does not apply (it is no skip: it runs, in the
 * tier of its engine). Each use says in one line why.
 */
export function onlyOn<T>(
  name: EngineName,
  test: Test<T>,
): (title: string, fn: Callback<T>) => void {
  return engine.name === name ? test : () => {};
}

/**
 * build/plugins/<name>.wasm, or an error saying how to build it: a missing fixture fails the
 * test that needs it, it never skips it.
 */
export function pluginPath(name: string): string {
  const path = join(ROOT, 'build', 'plugins', `${name}.wasm`);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: run bash scripts/build-plugins.sh before the plugins tier`,
    );
  }
  return path;
}

export function pluginBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(pluginPath(name)));
}

const compiled = new Map<string, Promise<CompiledPlugin>>();

/** The fixture compiled once per test process. */
export function compiledPlugin(name: string): Promise<CompiledPlugin> {
  let p = compiled.get(name);
  if (!p) {
    p = engine.compile(pluginBytes(name), { cacheDir: CACHE_DIR, name });
    compiled.set(name, p);
  }
  return p;
}

export interface FakeHost extends HostImports {
  raised: number[];
  lowered: number[];
  logs: string[];
  timers: Map<number, bigint>;
  /** 64 KiB of guest RAM at IOVA 0 */
  ram: Uint8Array;
}

/** Host imports that record what the plugin did; DMA outside `ram` fails with not-mapped. */
export function fakeHost(): FakeHost {
  const ram = new Uint8Array(65536);
  const inRam = (iova: bigint, len: number) => iova + BigInt(len) <= BigInt(ram.length);
  const host: FakeHost = {
    raised: [],
    lowered: [],
    logs: [],
    timers: new Map(),
    ram,
    irq: {
      raise: (v) => void host.raised.push(v),
      lower: (v) => void host.lowered.push(v),
      isMasked: () => false,
    },
    dma: {
      read(iova, len) {
        if (!inRam(iova, len)) throw new WitError('not-mapped');
        return ram.slice(Number(iova), Number(iova) + len);
      },
      write(iova, data) {
        if (!inRam(iova, data.length)) throw new WitError('not-mapped');
        ram.set(data, Number(iova));
      },
    },
    log: { log: (level: LogLevel, message: string) => void host.logs.push(`${level}: ${message}`) },
    clock: {
      nowNs: () => 0n,
      setTimer: (id, delayNs) => void host.timers.set(id, delayNs),
      cancelTimer: (id) => void host.timers.delete(id),
    },
    byteStream: { write: (data) => data.length, read: () => new Uint8Array(0) },
  };
  return host;
}

export const MiB = 1 << 20;

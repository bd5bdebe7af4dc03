// SPDX-License-Identifier: MIT
// jco's side of the V8 engine: transpiling a component into JS glue plus core modules, and the
// on-disk cache of the result keyed by jco version and the component's sha256, so a cached cold
// start neither loads jco (about a second) nor transpiles. jco <= 1.12's sync glue costs tens of
// ns per call; 1.13 and later add a task per call and cost microseconds (DESIGN.md "Engines"),
// so the version is part of the key and the glue options are fixed here (the same as the C
// plugins' JCO_FLAGS in plugins/c/plugin.mk).

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger } from '../../log.js';
import type { MemoryArea } from '../engine.js';
import type { DeviceCalls } from './guarded-instance.js';
import type { WasmImports, WasmInstance, WasmModule } from './wasm-api.js';

const log = createLogger('plugins');

/** The jco options this engine's wrapper is written against; changing them changes the cache key. */
const GLUE_OPTIONS = {
  name: 'plugin',
  instantiation: 'sync',
  namespacedExports: false,
  validLiftingOptimization: true,
  typescript: false,
} as const;
// With an `instantiation` option jco never inlines core modules into the glue: every one is a
// file and reaches the glue only through our getCoreModule, so every one gets the memory cap.
const GLUE_FILE = 'plugin.js';
const META_FILE = 'vfiobox-cache.json';
const CACHE_FORMAT = 1;

interface CacheMeta {
  format: number;
  jco: string;
  sha256: string;
  options: typeof GLUE_OPTIONS;
  coreModules: string[];
}

export function defaultCacheRoot(): string {
  return join(process.env.VFIOBOX_CACHE ?? join(homedir(), '.cache', 'vfiobox'), 'jco');
}

let jcoVersionCache: string | undefined;

/** The installed jco's version, from its package.json (its `exports` hide that file). */
async function jcoVersion(): Promise<string> {
  if (jcoVersionCache) return jcoVersionCache;
  const entry = fileURLToPath(import.meta.resolve('@bytecodealliance/jco'));
  const pkg = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  jcoVersionCache = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  return jcoVersionCache;
}

async function readCache(dir: string, sha256: string, jco: string): Promise<CacheMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(dir, META_FILE), 'utf8')) as CacheMeta;
    const same =
      meta.format === CACHE_FORMAT &&
      meta.jco === jco &&
      meta.sha256 === sha256 &&
      JSON.stringify(meta.options) === JSON.stringify(GLUE_OPTIONS) &&
      Array.isArray(meta.coreModules);
    return same ? meta : undefined;
  } catch {
    return undefined;
  }
}

/** Transpiles into a private directory and renames it into place (atomic for concurrent loads). */
async function transpileInto(dir: string, component: Uint8Array, sha256: string, jco: string) {
  const { transpile } = await import('@bytecodealliance/jco');
  const started = performance.now();
  // jco's typings lack `typescript` (its option for --no-typescript): widen, not cast away.
  const options: Parameters<typeof transpile>[1] & { typescript: boolean } = { ...GLUE_OPTIONS };
  const { files } = await transpile(component, options);
  log('transpiled %s in %d ms', sha256.slice(0, 12), Math.round(performance.now() - started));
  const names = Object.keys(files);
  if (!names.includes(GLUE_FILE))
    throw new Error(`jco produced no ${GLUE_FILE}: ${names.join(', ')}`);
  const meta: CacheMeta = {
    format: CACHE_FORMAT,
    jco,
    sha256,
    options: GLUE_OPTIONS,
    coreModules: names.filter((n) => n.endsWith('.wasm')),
  };
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(tmp, name), data);
  await writeFile(join(tmp, META_FILE), JSON.stringify(meta));
  return await moveIntoPlace(tmp, dir, meta);
}

/**
 * rename(2) of the private directory onto `dir`. If another process got there first with a
 * valid entry, its entry is kept (never deleted under a reader); an invalid one is replaced.
 */
async function moveIntoPlace(tmp: string, dir: string, meta: CacheMeta): Promise<CacheMeta> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await rename(tmp, dir);
      return meta;
    } catch {
      const existing = await readCache(dir, meta.sha256, meta.jco);
      if (existing) {
        await rm(tmp, { recursive: true, force: true });
        return existing;
      }
      await rm(dir, { recursive: true, force: true });
    }
  }
  await rm(tmp, { recursive: true, force: true });
  throw new Error(`cannot move the transpiled files into ${dir}`);
}

export async function loadGlue(component: Uint8Array, sha256: string, root: string) {
  const jco = await jcoVersion();
  const dir = join(root, jco, sha256);
  const meta =
    (await readCache(dir, sha256, jco)) ?? (await transpileInto(dir, component, sha256, jco));
  const coreBytes = new Map<string, Uint8Array>();
  for (const name of meta.coreModules) coreBytes.set(name, await readFile(join(dir, name)));
  const glue = (await import(pathToFileURL(join(dir, GLUE_FILE)).href)) as {
    instantiate?: GlueInstantiate;
  };
  if (typeof glue.instantiate !== 'function') throw new Error(`${dir}: glue has no instantiate()`);
  return { instantiate: glue.instantiate, coreBytes };
}

/** What jco's sync glue exports (see any transpiled plugin.js). */
export type GlueInstantiate = (
  getCoreModule: (name: string) => WasmModule,
  imports: Record<string, unknown>,
  instantiateCore: (module: WasmModule, imports?: WasmImports) => WasmInstance,
) => { device?: GlueDevice; memoryAreas?: GlueMemoryAreas };

/** The `memory-areas` export (0.1.1) as the glue gives it. */
export interface GlueMemoryAreas {
  areas(): MemoryArea[];
}

/** The device export as jco's glue gives it: the calls every engine makes (guarded-instance.ts). */
export type GlueDevice = DeviceCalls;

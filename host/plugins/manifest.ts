// SPDX-License-Identifier: MIT
// A plugin's manifest: who it is, which devices it is for, and what it asks for (DESIGN.md
// "Isolation and failure model"). It is a request, never a grant: the user's policy decides
// (grants.ts). It travels inside the component as a top-level custom section named
// `vfiobox:manifest` holding JSON (scripts/embed-manifest.mjs puts it there), or next to it as
// `<name>.manifest.json` / `<name>.wasm.manifest.json`. The embedded one wins.
//
//   {
//     "name": "edu", "version": "1.0.0", "description": "QEMU's edu teaching device",
//     "ids": [{ "vendor": "0x1234", "device": "0x11e8" }],
//     "capabilities": { "irq": { "vectors": [0] }, "dma": "all", "log": true, "clock": true },
//     "budgets": { "accessUs": 100, "memoryBytes": 1048576 }
//   }
//
// ids entries are host/match.ts IdEntry values: ids as numbers, "0x..." strings or "*";
// `dma` is "none", "all" or windows [{ "iova", "sizeBytes", "access": "r" | "w" | "rw" }];
// `regions` (passthrough variants) [{ "bar", "offset", "lengthBytes" }]; `sharedMemory` (true:
// the plugin's own memory areas, WIT 0.1.1 `shared-memory`). Omitted capabilities
// are not requested. Unknown fields are errors, so a typo cannot silently drop a request.

import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError } from '../errors.js';
import { canonicalEntry, type IdEntry } from '../match.js';
import { Fields, join, parseJson } from './schema.js';
import { readComponentNames } from './wasm-binary.js';

export const MANIFEST_SECTION = 'vfiobox:manifest';
export const MANIFEST_ERROR = 'ERR_VFIOBOX_MANIFEST';
/** Highest MSI-X vector number (PCI: at most 2048 table entries). */
export const MAX_VECTOR = 2047;

export type DmaAccess = 'r' | 'w' | 'rw';

export interface DmaWindow {
  iova: bigint;
  sizeBytes: bigint;
  access: DmaAccess;
}

export interface RegionRange {
  bar: number;
  offset: bigint;
  lengthBytes: bigint;
}

export interface Capabilities {
  irq: { vectors: number[] | 'all' };
  dma: 'none' | 'all' | DmaWindow[];
  regions: RegionRange[];
  log: boolean;
  clock: boolean;
  byteStream: boolean;
  /** `shared-memory`: read and write the plugin's own memory areas (never anything else) */
  sharedMemory: boolean;
}

export interface Budgets {
  /** wall-clock budget of one plugin call, in microseconds */
  accessUs?: number;
  /** cap on the plugin's linear memory */
  memoryBytes?: number;
}

export interface Manifest {
  name: string;
  version: string;
  description: string;
  ids: IdEntry[];
  capabilities: Capabilities;
  budgets: Budgets;
}

export type ManifestSource = 'embedded' | 'sidecar' | 'none';

export interface FoundManifest {
  manifest: Manifest;
  source: ManifestSource;
  /** the sidecar file, when source is 'sidecar' */
  sidecarPath?: string;
}

export const NO_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  irq: { vectors: [] },
  dma: 'none',
  regions: [],
  log: false,
  clock: false,
  byteStream: false,
  sharedMemory: false,
});

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TOP_FIELDS = ['name', 'version', 'description', 'ids', 'capabilities', 'budgets'];
const CAPABILITY_FIELDS = ['irq', 'dma', 'regions', 'log', 'clock', 'byteStream', 'sharedMemory'];
const ID_FIELDS = ['vendor', 'device', 'subvendor', 'subdevice', 'classCode', 'classMask'];

function idValue(f: Fields, value: unknown, path: string): number | '*' | undefined {
  if (value === undefined || value === '*') return value;
  if (typeof value === 'string' && /^0x[0-9a-f]{1,8}$/i.test(value)) return Number(value);
  if (typeof value === 'number') return value;
  return f.fail(path, 'an id: a number, a "0x..." string or "*"', value);
}

function parseIds(f: Fields, value: unknown, path: string): IdEntry[] {
  return f.array(value, path).map((raw, i) => {
    const where = join(path, i);
    const o = f.object(raw, where, ID_FIELDS);
    const entry: IdEntry = {};
    for (const key of ['vendor', 'device', 'subvendor', 'subdevice'] as const) {
      const v = idValue(f, o[key], join(where, key));
      if (v !== undefined) entry[key] = v;
    }
    for (const key of ['classCode', 'classMask'] as const) {
      const v = idValue(f, o[key], join(where, key));
      if (v === '*') f.fail(join(where, key), 'a 24-bit class value', v);
      if (v !== undefined) entry[key] = v;
    }
    try {
      canonicalEntry(entry, where);
    } catch (err) {
      f.fail(where, 'a valid id entry', `${(err as Error).message}`);
    }
    return entry;
  });
}

function parseVectors(f: Fields, value: unknown, path: string): number[] | 'all' {
  const o = f.object(value, path, ['vectors']);
  const vectorsPath = join(path, 'vectors');
  if (o.vectors === 'all') return 'all';
  if (!Array.isArray(o.vectors))
    return f.fail(vectorsPath, 'an array of vectors or "all"', o.vectors);
  const vectors = o.vectors.map((v, i) => f.integer(v, join(vectorsPath, i), 0, MAX_VECTOR));
  return [...new Set(vectors)].sort((a, b) => a - b);
}

function parseDma(f: Fields, value: unknown, path: string): Capabilities['dma'] {
  if (value === 'none' || value === 'all') return value;
  if (!Array.isArray(value)) return f.fail(path, '"none", "all" or an array of windows', value);
  const windows = value.map((raw, i): DmaWindow => {
    const where = join(path, i);
    const o = f.object(raw, where, ['iova', 'sizeBytes', 'access']);
    const access = f.string(
      o.access ?? 'rw',
      join(where, 'access'),
      /^(r|w|rw)$/,
      '"r", "w" or "rw"',
    );
    const window = {
      iova: f.u64(o.iova, join(where, 'iova')),
      sizeBytes: f.u64(o.sizeBytes, join(where, 'sizeBytes')),
      access: access as DmaAccess,
    };
    if (window.iova + window.sizeBytes > 1n << 64n) {
      f.fail(where, 'a window inside the 64-bit IOVA space', raw);
    }
    return window;
  });
  return windows.length ? windows : 'none';
}

function parseRegions(f: Fields, value: unknown, path: string): RegionRange[] {
  return f.array(value, path).map((raw, i) => {
    const where = join(path, i);
    const o = f.object(raw, where, ['bar', 'offset', 'lengthBytes']);
    return {
      bar: f.integer(o.bar, join(where, 'bar'), 0, 5),
      offset: f.u64(o.offset, join(where, 'offset')),
      lengthBytes: f.u64(o.lengthBytes, join(where, 'lengthBytes')),
    };
  });
}

/** The capabilities object of a manifest or a policy entry; only the fields present. */
export function parseCapabilities(f: Fields, value: unknown, path: string): Partial<Capabilities> {
  const o = f.object(value, path, CAPABILITY_FIELDS);
  const out: Partial<Capabilities> = {};
  if (o.irq !== undefined) out.irq = { vectors: parseVectors(f, o.irq, join(path, 'irq')) };
  if (o.dma !== undefined) out.dma = parseDma(f, o.dma, join(path, 'dma'));
  if (o.regions !== undefined) out.regions = parseRegions(f, o.regions, join(path, 'regions'));
  for (const key of ['log', 'clock', 'byteStream', 'sharedMemory'] as const) {
    if (o[key] !== undefined) out[key] = f.boolean(o[key], join(path, key));
  }
  return out;
}

function parseBudgets(f: Fields, value: unknown, path: string): Budgets {
  const o = f.object(value, path, ['accessUs', 'memoryBytes']);
  const budgets: Budgets = {};
  if (o.accessUs !== undefined)
    budgets.accessUs = f.integer(o.accessUs, join(path, 'accessUs'), 1, 60e6);
  if (o.memoryBytes !== undefined) {
    budgets.memoryBytes = f.integer(o.memoryBytes, join(path, 'memoryBytes'), 65536, 2 ** 32);
  }
  return budgets;
}

/**
 * Validates a parsed manifest document.
 * @param source names the document in errors
 * @throws ConfigError naming the field path, what was expected and what was found
 */
export function parseManifest(json: unknown, source: string): Manifest {
  const f = new Fields(
    source,
    MANIFEST_ERROR,
    'see host/plugins/manifest.ts for the manifest format',
  );
  const o = f.object(json, '', TOP_FIELDS);
  const caps =
    o.capabilities === undefined ? {} : parseCapabilities(f, o.capabilities, 'capabilities');
  return {
    name: f.string(o.name, 'name', NAME, 'a name of a-z, 0-9, ".", "_", "-" (at most 64)'),
    version: f.string(
      o.version,
      'version',
      /^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/,
      'a semver x.y.z',
    ),
    description: f.optional(o, 'description', (v) => f.string(v, 'description')) ?? '',
    ids: o.ids === undefined ? [] : parseIds(f, o.ids, 'ids'),
    capabilities: { ...NO_CAPABILITIES, irq: { vectors: [] }, regions: [], ...caps },
    budgets: o.budgets === undefined ? {} : parseBudgets(f, o.budgets, 'budgets'),
  };
}

function pluginBaseName(path: string | undefined): string {
  const base = path ? basename(path).replace(/\.wasm$/, '') : 'plugin';
  const cleaned = base
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return (cleaned || 'plugin').slice(0, 64);
}

/** Sidecar paths tried for `x.wasm`, in order. */
export function sidecarPaths(path: string): string[] {
  const stem = path.replace(/\.wasm$/, '');
  return stem === path
    ? [`${path}.manifest.json`]
    : [`${stem}.manifest.json`, `${path}.manifest.json`];
}

/**
 * Finds and validates a plugin's manifest: the `vfiobox:manifest` custom section, else a sidecar
 * file beside `path`. Without either, a manifest named after the file that requests nothing.
 * @throws ConfigError for a malformed manifest (or two embedded ones)
 */
export function readManifest(bytes: Uint8Array, path?: string): FoundManifest {
  const where = path ?? 'the component';
  let sections: Uint8Array[] = [];
  try {
    sections = readComponentNames(bytes)
      .custom.filter((s) => s.name === MANIFEST_SECTION)
      .map((s) => s.data);
  } catch {
    // Not a readable component: the engine reports that; look for a sidecar anyway.
  }
  if (sections.length > 1) {
    throw new ConfigError(
      MANIFEST_ERROR,
      `${where}: has ${sections.length} ${MANIFEST_SECTION} sections`,
    );
  }
  const [embedded] = sections;
  if (embedded) {
    const source = `${MANIFEST_SECTION} section of ${where}`;
    const text = new TextDecoder().decode(embedded);
    return {
      manifest: parseManifest(parseJson(text, source, MANIFEST_ERROR), source),
      source: 'embedded',
    };
  }
  for (const sidecarPath of path ? sidecarPaths(path) : []) {
    if (!existsSync(sidecarPath)) continue;
    const json = parseJson(readFileSync(sidecarPath, 'utf8'), sidecarPath, MANIFEST_ERROR);
    return { manifest: parseManifest(json, sidecarPath), source: 'sidecar', sidecarPath };
  }
  return {
    manifest: {
      name: pluginBaseName(path),
      version: '0.0.0',
      description: '',
      ids: [],
      capabilities: { ...NO_CAPABILITIES, irq: { vectors: [] }, regions: [] },
      budgets: {},
    },
    source: 'none',
  };
}

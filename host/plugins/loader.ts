// SPDX-License-Identifier: MIT
// Loading a plugin file: read it, check its hash against an expected one, read its manifest,
// and compile it with an engine (which reads and checks the ABI version, abi.ts). What comes
// back is everything the device model and `vfiobox inspect` need to know about it.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { readAbi, type World } from './abi.js';
import type { AbiVersion, CompiledPlugin, Engine, EngineName } from './engine.js';
import { DEFAULT_ENGINE, engineByName } from './engines/index.js';
import { type Manifest, type ManifestSource, readManifest } from './manifest.js';
import { readComponentNames } from './wasm-binary.js';

export { SUPPORTED_ABI } from './abi.js';

export const PLUGIN_NOT_FOUND = 'ERR_VFIOBOX_PLUGIN_NOT_FOUND';
export const PLUGIN_HASH = 'ERR_VFIOBOX_PLUGIN_HASH';

export interface LoadedPlugin {
  path: string;
  sha256: string;
  sizeBytes: number;
  manifest: Manifest;
  manifestSource: ManifestSource;
  compiled: CompiledPlugin;
  abi: AbiVersion;
  world: World;
  /** unversioned interfaces it imports ('irq', 'dma', ...) and exports ('device') */
  imports: readonly string[];
  exports: string[];
}

export interface LoadOptions {
  /** the engine or its name (docs/plugins.md "Choosing an engine"); default: V8 */
  engine?: Engine | EngineName | undefined;
  /** root of the engine's compile cache (default: the engine's own, under ~/.cache/vfiobox) */
  cacheDir?: string | undefined;
  /** refuse the file unless its sha256 is this (hex) */
  expectSha256?: string | undefined;
}

/** Reads a plugin file. @throws ConfigError for a missing or unreadable file */
export async function readPluginFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError(PLUGIN_NOT_FOUND, `plugin file ${path}: ${why}`);
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Loads and compiles a plugin.
 * @throws ConfigError (missing file, hash mismatch, bad manifest), PluginError (not a
 *   component, unsupported or mixed ABI: kinds 'invalid' / 'unsupported')
 */
export async function loadPlugin(path: string, options: LoadOptions = {}): Promise<LoadedPlugin> {
  const full = resolve(path);
  const bytes = await readPluginFile(full);
  const sha256 = sha256Hex(bytes);
  const expected = options.expectSha256?.toLowerCase();
  if (expected !== undefined && expected !== sha256) {
    throw new ConfigError(
      PLUGIN_HASH,
      `plugin file ${full} has sha256 ${sha256}, expected ${expected}`,
      'the file changed since its hash was recorded; check where it came from',
    );
  }
  const { manifest, source } = readManifest(bytes, full);
  const engine =
    typeof options.engine === 'object'
      ? options.engine
      : engineByName(options.engine ?? DEFAULT_ENGINE);
  const compiled = await engine.compile(bytes, { cacheDir: options.cacheDir, name: manifest.name });
  return {
    path: full,
    sha256,
    sizeBytes: bytes.length,
    manifest,
    manifestSource: source,
    compiled,
    abi: compiled.abi,
    world: compiled.world,
    imports: compiled.imports,
    // The engine has read the same names already, so this cannot throw any more.
    exports: readAbi(manifest.name, readComponentNames(bytes)).exports,
  };
}

// SPDX-License-Identifier: MIT
// What every engine's compile() reads from a component before compiling it: its sha256 (the
// cache key), the name errors use, and its ABI version, world and interfaces (abi.ts). Shared so
// that both engines name a plugin and refuse a malformed one in the same way.

import { createHash } from 'node:crypto';
import { PluginError } from '../../errors.js';
import { type ComponentAbi, readAbi } from '../abi.js';
import { isKnownWasiImport } from '../wasi/index.js';
import { readComponentNames } from '../wasm-binary.js';

export interface CompileInput {
  sha256: string;
  /** the plugin's name in errors: the given one, else `plugin-<sha256 prefix>` */
  name: string;
  abi: ComponentAbi;
  /** the WASI interfaces it imports (a componentize-js plugin's plumbing; readAbi lets them by) */
  wasiImports: string[];
}

/**
 * @throws PluginError kind 'invalid' (not a well-formed component) or whatever readAbi throws
 *   ('unsupported': a version outside the host's range, a foreign interface)
 */
export function readCompileInput(component: Uint8Array, name: string | undefined): CompileInput {
  const sha256 = createHash('sha256').update(component).digest('hex');
  const plugin = name ?? `plugin-${sha256.slice(0, 12)}`;
  try {
    const names = readComponentNames(component);
    const abi = readAbi(plugin, names);
    return { sha256, name: plugin, abi, wasiImports: names.imports.filter(isKnownWasiImport) };
  } catch (err) {
    if (err instanceof RangeError) throw new PluginError(plugin, 'load', 'invalid', err.message);
    throw err;
  }
}

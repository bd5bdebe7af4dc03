// SPDX-License-Identifier: MIT
// The plugins that ship with vfiobox (plugins/c/*, built by scripts/build-plugins.sh into
// build/plugins/<name>.wasm). `vfiobox serve edu` means the bundled edu; anything with a slash
// or a .wasm suffix is a path.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';

export const BUNDLED_PLUGINS = ['edu', 'serial16550', 'ticker', 'scratchpad', 'csum'] as const;

/** build/plugins in this module's directory or any ancestor (source tree, build/, dist/). */
export function bundledPluginDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, 'build', 'plugins');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** A bare name (no slash, no .wasm suffix) names a bundled plugin; anything else is a path. */
export function isBundledName(arg: string): boolean {
  return !arg.includes('/') && !arg.endsWith('.wasm');
}

/** A plugin argument as a file path: a bundled name, or a path that must exist. */
export function resolvePlugin(arg: string): string {
  if (isBundledName(arg)) {
    const dir = bundledPluginDir();
    const path = dir ? join(dir, `${arg}.wasm`) : undefined;
    if (path && existsSync(path)) return path;
    throw new ConfigError(
      'ERR_VFIOBOX_PLUGIN_NOT_FOUND',
      `no bundled plugin '${arg}' (bundled: ${BUNDLED_PLUGINS.join(', ')})`,
      // A bundled name whose file is missing needs a build; any other name is a typo or a path.
      path && (BUNDLED_PLUGINS as readonly string[]).includes(arg)
        ? 'build the bundled plugins: bash scripts/build-plugins.sh'
        : `name a bundled plugin, or give a path to a .wasm component (./${arg}.wasm)`,
    );
  }
  const path = resolve(arg);
  if (!existsSync(path)) {
    throw new ConfigError('ERR_VFIOBOX_PLUGIN_NOT_FOUND', `plugin file not found: ${path}`);
  }
  return path;
}

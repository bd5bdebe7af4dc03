// SPDX-License-Identifier: MIT
// Loads the native addon: build/{Release,Debug}/vfio_core.node (real syscalls) or
// vfio_core_fake.node (the in-memory fake kernel, tests only). Refuses an addon whose
// abiVersion differs from NATIVE_ABI_VERSION, and hands the addon the VfioError factory so
// native errors are real VfioError instances (the better-sqlite3 pattern).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VfioError } from '../errors.js';
import type { Native, NativeErrorInit, NativeVfioUser } from './types.js';
import { NATIVE_ABI_VERSION, NATIVE_VFIO_USER_KEYS } from './types.js';

const require = createRequire(import.meta.url);
const loaded = new Map<'linux' | 'fake', Native>();

/** build/<config>/<name>.node in this module's directory or any ancestor (source, build/, dist/). */
function findAddon(name: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    for (const config of ['Release', 'Debug']) {
      const candidate = join(dir, 'build', config, `${name}.node`);
      if (existsSync(candidate)) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/**
 * The native addon. `linux` = vfio_core.node, `fake` = vfio_core_fake.node.
 * Loaded once per flavour; later calls return the same object.
 */
export function loadNative(which: 'linux' | 'fake'): Native {
  const cached = loaded.get(which);
  if (cached) return cached;
  const name = which === 'fake' ? 'vfio_core_fake' : 'vfio_core';
  const path = findAddon(name);
  if (path === undefined) {
    throw new VfioError({
      op: 'dlopen',
      errno: 2,
      code: 'ERR_VFIO_ADDON_NOT_FOUND',
      message: `${name}.node not found in build/Release or build/Debug (run npm run build:native)`,
      detail: { name },
    });
  }
  const addon = require(path) as Native;
  if (addon.abiVersion !== NATIVE_ABI_VERSION) {
    throw new VfioError({
      op: 'dlopen',
      errno: 22,
      code: 'ERR_VFIO_ABI_MISMATCH',
      message: `addon abiVersion ${String(addon.abiVersion)} != ${NATIVE_ABI_VERSION}: rebuild it`,
      detail: { path },
    });
  }
  addon.setErrorFactory((init: NativeErrorInit) => new VfioError(init));
  loaded.set(which, addon);
  return addon;
}

/**
 * vfio_core.node with its vfio-user exports (sockets, memfds), which the fake addon lacks.
 * Throws VfioError ERR_VFIO_ADDON_NOT_FOUND when the real addon is missing or too old.
 */
export function loadVfioUserNative(): Native & NativeVfioUser {
  const addon: Native & Partial<NativeVfioUser> = loadNative('linux');
  const missing = Object.keys(NATIVE_VFIO_USER_KEYS).filter((key) => !(key in addon));
  if (missing.length > 0) {
    throw new VfioError({
      op: 'dlopen',
      errno: 2,
      code: 'ERR_VFIO_ADDON_NOT_FOUND',
      message: `vfio_core.node lacks ${missing.join(', ')} (run npm run build:native)`,
      detail: { missing: missing.join(',') },
    });
  }
  return addon as Native & NativeVfioUser;
}

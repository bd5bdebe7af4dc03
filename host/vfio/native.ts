// SPDX-License-Identifier: MIT
// Which native sys layer the facades use: the real kernel (vfio_core.node) or the in-memory fake
// kernel (vfio_core_fake.node, tests only). Chosen once per process: VFIOBOX_NATIVE=fake, or
// useNativeLayer('fake') before the first native call.

import { loadNative } from '../native/binding.js';
import type { Native } from '../native/types.js';

let layer: 'linux' | 'fake' = process.env.VFIOBOX_NATIVE === 'fake' ? 'fake' : 'linux';
let loaded: Native | undefined;

/** Selects the sys layer; only before the first use. */
export function useNativeLayer(which: 'linux' | 'fake'): void {
  if (loaded && loaded.sysLayer !== which) {
    throw new Error(`native layer already loaded as '${loaded.sysLayer}'`);
  }
  layer = which;
}

/** The loaded addon (loaded on first use). */
export function native(): Native {
  loaded ??= loadNative(layer);
  return loaded;
}

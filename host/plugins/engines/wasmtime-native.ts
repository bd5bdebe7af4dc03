// SPDX-License-Identifier: MIT
// The native side of the wasmtime engine (native/src/wasm/, in vfio_core.node): wasmtime's C API
// embedded in the core, so a plugin call is a C call and never enters V8. This file is the
// contract between native/src/js/wasmtime.cc and host/plugins/engines/wasmtime.ts.
//
// Everything here is synchronous and on the calling thread, except compile. Bytes handed to
// JS are plain Uint8Arrays (never Node Buffers, whose slice() is a view). Values follow the
// engine interface (engine.ts): jco's naming, u64 as bigint, enum cases as kebab-case strings.
// The host imports are the grant-checked HostImports object itself; a host function that throws
// a WitError (an Error whose `name` is 'WitError' and whose `code` is a case of the import's
// error enum) makes the plugin's call return err(code); anything else it throws traps the
// plugin (and poisons the instance).
// dma.map-window and dma.unmap-window (WIT 0.1.2) have no HostImports function: the native
// side answers them itself (a window needs the served device's DMA port), err(unsupported)
// where it cannot map one.

import type { HostImports, MemoryArea } from '../engine.js';
import type { DeviceCalls } from './guarded-instance.js';

/** What a failed native call throws: an Error with these own properties. */
export interface NativeWasmFailure extends Error {
  /**
   * 'wit': the export returned err(code) (for load-state, code is the plugin's message);
   * 'trap': a trap, an epoch deadline, the memory limit, a host import that threw something
   *         other than a WitError; the instance is poisoned;
   * 'invalid': the component does not compile or link (bad bytes, an import nobody defines),
   *         or the instance was disposed.
   */
  vfioboxKind: 'wit' | 'trap' | 'invalid';
  /** set for 'wit' */
  code?: string;
}

export interface NativeWasmInstanceOptions {
  /** `x.y.z` of vfiobox:device the component was built against; the host imports are defined
   *  under `vfiobox:device/<interface>@<abi>` */
  abi: string;
  /** cap on each linear memory in bytes (a module may have one); a grow beyond it fails
   *  (memory.grow returns -1, which C plugins see as malloc failing); 0: no cap */
  memoryBytes: number;
  /** per-call wall-clock budget in ms, enforced with epoch interruption; 0 = none */
  budgetMs: number;
}

/** One instance (one wasmtime store). Calls after a trap or dispose() throw NativeWasmFailure. */
export interface NativeWasmInstance extends DeviceCalls {
  /** undefined when the component exports no memory-areas */
  memoryAreas(): MemoryArea[] | undefined;
  /** bytes of linear memory now (all memories) */
  memoryBytes(): number;
  /** drops the store; idempotent */
  dispose(): void;
}

/** A compiled component. */
export interface NativeWasmComponent {
  instantiate(host: HostImports, options: NativeWasmInstanceOptions): NativeWasmInstance;
}

export interface NativeWasmtime {
  /** the wasmtime crate version linked in, e.g. '48.0.8' */
  readonly version: string;
  /**
   * Compiles a component off the JS thread. cachePath: a file for the serialized artifact;
   * read when it exists and is valid for this build (else recompiled), written after a
   * compile. Rejects with NativeWasmFailure kind 'invalid'.
   */
  compile(bytes: Uint8Array, cachePath: string | undefined): Promise<NativeWasmComponent>;
}

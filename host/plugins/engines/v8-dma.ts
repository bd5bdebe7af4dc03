// SPDX-License-Identifier: MIT
// The V8 engine lowers the two `dma` imports itself (wit/vfiobox-device/0.1.0/dma.wit), so that
// the bytes move once: client memory -> the plugin's linear memory for dma.read, and back for
// dma.write. jco's glue lowers them through a JS value (native -> new Uint8Array -> cabi_realloc
// -> a second copy, and memory.slice -> native), which costs 4x memcpy at 1 MiB (bench/README.md).
//
// The seam: the glue instantiates every core module through our instantiateCore (v8.ts). The
// module whose imports hold `vfiobox:device/dma@0.1.x` gets our two functions there in place of
// the glue's, bound after instantiation to that module's own `memory` and `cabi_realloc`, which
// are the canonical options the glue's lowering uses for it (checked in jco 1.12 output for the
// C plugins and componentize-js). The host calls stay the grant-checked HostImports (grants.ts:
// the same checks, counters and errors as read/write); a module without those exports keeps the
// glue's lowering.
//
// Canonical ABI (component-model CanonicalABI.md "Flattening"; identical to jco 1.12's glue):
//   read(iova: u64, len: u32) -> result<list<u8>, dma-error>
//     core (i64, i32, i32 retptr) -> (); at retptr: u8 case (0 ok, 1 err) at +0; ok: i32 ptr
//     at +4 and i32 len at +8, ptr from cabi_realloc(0, 0, 1, len); err: u8 dma-error at +4
//   write(iova: u64, data: list<u8>) -> result<_, dma-error>
//     core (i64, i32 ptr, i32 len, i32 retptr) -> (); u8 case at +0, u8 dma-error at +1
// A host's readInto allocates only once the range is known to be copyable (host/vfio-user/
// server.ts): a block the plugin never receives is lost to it, and with the C plugins' bump
// allocator (plugins/c/common/libc) one such block stops the heap from ever rewinding.

import type { DmaTarget, HostImports } from '../engine.js';
import { copyInto, copyOut, WitError } from '../engine.js';
import { witErrorCases } from '../errno-map.js';
import { type HostFaultSink, hostFault } from './v8-imports.js';
import { type WasmImports, type WasmInstance, type WasmModule, wasm } from './wasm-api.js';

/**
 * The core-module import name of `dma` in every supported version: 0.1.x releases only add
 * items (wit/README.md), so dma.read/dma.write keep their signatures across them. What else a
 * version's dma has (0.1.2's map-window, unmap-window) stays the glue's lowering.
 */
export const DMA_IMPORT = /^vfiobox:device\/dma@0\.1\.\d+$/;
const DMA_CASES = witErrorCases('dma-error');
const OK = 0;
const ERR = 1;

type Realloc = (ptr: number, oldSize: number, align: number, newSize: number) => number;

/** True when `module` exports what the lowering needs (a memory and cabi_realloc). */
function canLower(module: WasmModule): boolean {
  let memory = false;
  let realloc = false;
  for (const e of wasm.Module.exports(module)) {
    if (e.name === 'memory' && e.kind === 'memory') memory = true;
    if (e.name === 'cabi_realloc' && e.kind === 'function') realloc = true;
  }
  return memory && realloc;
}

/** One plugin instance's lowering of dma.read and dma.write. */
export class DmaLowering {
  readonly #dma: HostImports['dma'];
  readonly #faults: HostFaultSink;
  #memory: { buffer: ArrayBuffer } | undefined;
  #realloc: Realloc | undefined;
  #view = new DataView(new ArrayBuffer(0));
  /** what the plugin's cabi_realloc threw during the current call (a trap, passed on as is) */
  #allocError: unknown;
  readonly #target: DmaTarget = {
    alloc: (len) => this.#alloc(len),
    memory: () => this.#buffer(),
  };
  #lowering = false;

  constructor(dma: HostImports['dma'], faults: HostFaultSink) {
    this.#dma = dma;
    this.#faults = faults;
  }

  /** `imports` with our functions for the dma import, when `module` is the one that takes it. */
  imports(module: WasmModule, imports: WasmImports | undefined): WasmImports | undefined {
    const name = imports ? Object.keys(imports).find((k) => DMA_IMPORT.test(k)) : undefined;
    const dma = name === undefined ? undefined : imports?.[name];
    if (!imports || !name || !dma || this.#lowering || !canLower(module)) return imports;
    this.#lowering = true;
    const ours: Record<string, unknown> = { ...dma };
    if ('read' in dma)
      ours.read = (iova: bigint, len: number, ret: number) => this.#read(iova, len, ret);
    if ('write' in dma) {
      ours.write = (iova: bigint, ptr: number, len: number, ret: number) =>
        this.#write(iova, ptr, len, ret);
    }
    return { ...imports, [name]: ours };
  }

  /** Binds the memory and cabi_realloc of the instance `imports` was made for. */
  bind(instance: WasmInstance): void {
    if (!this.#lowering || this.#memory) return;
    const { memory, cabi_realloc: realloc } = instance.exports;
    if (memory instanceof wasm.Memory && typeof realloc === 'function') {
      this.#memory = memory;
      this.#realloc = realloc as Realloc;
    }
  }

  #buffer(): ArrayBuffer {
    const memory = this.#memory;
    if (!memory) throw new Error('dma import called before its instance was bound');
    return memory.buffer;
  }

  #dataView(): DataView {
    const buffer = this.#buffer();
    if (this.#view.buffer !== buffer) this.#view = new DataView(buffer);
    return this.#view;
  }

  #alloc(len: number): number {
    const realloc = this.#realloc;
    if (!realloc) throw new Error('dma import called before its instance was bound');
    try {
      return realloc(0, 0, 1, len);
    } catch (err) {
      this.#allocError = err; // a trap in the plugin's allocator stays what it is
      throw err;
    }
  }

  /** The dma-error case index for `err`, or throws the trap it is (engine.ts error model). */
  #errorCase(what: string, err: unknown): number {
    if (err === this.#allocError) throw err;
    if (err instanceof WitError) {
      const index = DMA_CASES.indexOf(err.code);
      if (index >= 0) return index;
    }
    throw hostFault(this.#faults, what, err);
  }

  #read(iova: bigint, len: number, ret: number): void {
    const dma = this.#dma;
    const at = BigInt.asUintN(64, iova);
    const n = len >>> 0;
    this.#allocError = undefined;
    let ptr: number;
    try {
      ptr = dma.readInto
        ? dma.readInto(at, n, this.#target)
        : copyInto(dma.read(at, n), this.#target);
    } catch (err) {
      const index = this.#errorCase('dma.read', err);
      const view = this.#dataView();
      view.setUint8(ret, ERR);
      view.setUint8(ret + 4, index);
      return;
    }
    const view = this.#dataView();
    view.setUint8(ret, OK);
    view.setInt32(ret + 4, ptr, true);
    view.setInt32(ret + 8, n, true);
  }

  #write(iova: bigint, ptr: number, len: number, ret: number): void {
    const dma = this.#dma;
    const at = BigInt.asUintN(64, iova);
    const offset = ptr >>> 0;
    const n = len >>> 0;
    this.#allocError = undefined;
    try {
      if (dma.writeFrom) dma.writeFrom(at, this.#buffer(), offset, n);
      else dma.write(at, copyOut(this.#buffer(), offset, n));
    } catch (err) {
      const index = this.#errorCase('dma.write', err);
      const view = this.#dataView();
      view.setUint8(ret, ERR);
      view.setUint8(ret + 1, index);
      return;
    }
    this.#dataView().setUint8(ret, OK);
  }
}

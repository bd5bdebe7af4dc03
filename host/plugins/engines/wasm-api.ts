// SPDX-License-Identifier: MIT
// The few WebAssembly JS API members the V8 engine uses, typed locally: the project's lib is
// es2022 without DOM, and @types/node 20 does not declare the WebAssembly namespace. The values
// are V8's own (globalThis.WebAssembly).

/** A compiled core module (opaque here). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export type WasmImports = Record<string, Record<string, unknown>>;

interface WasmApi {
  Module: {
    new (bytes: Uint8Array): WasmModule;
    exports(module: WasmModule): { name: string; kind: string }[];
  };
  Instance: new (module: WasmModule, imports?: WasmImports) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  /** Traps: unreachable, out-of-bounds access, integer divide by zero, ... */
  RuntimeError: abstract new (
    ...args: never[]
  ) => Error;
  /** Import/export mismatches at instantiation. */
  LinkError: abstract new (
    ...args: never[]
  ) => Error;
  CompileError: abstract new (...args: never[]) => Error;
}

export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

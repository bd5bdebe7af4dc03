// SPDX-License-Identifier: MIT
// The little of the WebAssembly binary formats the plugin runtime needs, read and written by
// hand so that nothing here depends on an engine:
// - core modules (WebAssembly core spec 3.0, "Binary Format"): sections, the import section's
//   memory imports and the memory section, to cap every memory's maximum (DESIGN.md "Engines":
//   V8 has no store limiter, so the cap has to be in the module);
// - components (component-model Binary.md): the top-level import, export and custom sections, to
//   read the ABI version from the interface names and the manifest from a custom section.
// Malformed input is an ordinary outcome (plugins are untrusted): it throws RangeError with the
// byte offset, which callers turn into PluginError/ConfigError.

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
/** Core module version 1, layer 0 (core spec 5.5.16). */
const CORE_VERSION = [0x01, 0x00, 0x00, 0x00];
/** Component encoding version 0x0d, layer 1 (Binary.md "Component Definitions"). */
const COMPONENT_VERSION = [0x0d, 0x00, 0x01, 0x00];
export const WASM_PAGE_BYTES = 65536;

const SECTION_CUSTOM = 0;
const COMPONENT_SECTION_CORE_MODULE = 1;
const COMPONENT_SECTION_COMPONENT = 4;
const CORE_SECTION_IMPORT = 2;
const CORE_SECTION_MEMORY = 5;
const COMPONENT_SECTION_IMPORT = 10;
const COMPONENT_SECTION_EXPORT = 11;

/** Memory limits flags (core spec 5.3.7 plus the threads, memory64 and custom-page-sizes proposals). */
const LIMITS_HAS_MAX = 0x01;
const LIMITS_SHARED = 0x02;
const LIMITS_MEMORY64 = 0x04;
const LIMITS_KNOWN = LIMITS_HAS_MAX | LIMITS_SHARED | LIMITS_MEMORY64;

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  fail(what: string, at = this.pos): never {
    throw new RangeError(`malformed wasm at byte ${at}: ${what}`);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.bytes[this.pos++] as number;
  }

  /** Unsigned LEB128 of at most `bits` bits (also consumes a signed one of the same length). */
  leb(bits = 32): bigint {
    let result = 0n;
    let shift = 0n;
    const start = this.pos;
    for (;;) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) break;
      if (shift >= BigInt(bits + 7)) this.fail(`LEB128 longer than ${bits} bits`, start);
    }
    return result;
  }

  u32(): number {
    const value = this.leb(32);
    if (value > 0xffffffffn) this.fail('u32 out of range');
    return Number(value);
  }

  skip(len: number): void {
    if (len > this.end - this.pos) this.fail(`length ${len} runs past the end`);
    this.pos += len;
  }

  name(): string {
    const len = this.u32();
    const start = this.pos;
    this.skip(len);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, this.pos));
    } catch {
      return this.fail('name is not UTF-8', start);
    }
  }
}

/** Unsigned LEB128 encoding. */
export function encodeLeb(value: bigint | number): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError(`LEB128 of a negative value: ${v}`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

export type WasmKind = 'core-module' | 'component' | 'not-wasm';

/** What the 8-byte preamble says `bytes` is. */
export function wasmKind(bytes: Uint8Array): WasmKind {
  if (bytes.length < 8 || !startsWith(bytes, MAGIC)) return 'not-wasm';
  if (startsWith(bytes, CORE_VERSION, 4)) return 'core-module';
  if (startsWith(bytes, COMPONENT_VERSION, 4)) return 'component';
  return 'not-wasm';
}

interface Section {
  id: number;
  /** offset of the id byte */
  start: number;
  contentStart: number;
  end: number;
}

function* sections(bytes: Uint8Array): Generator<Section> {
  const r = new Reader(bytes, 8);
  while (r.pos < r.end) {
    const start = r.pos;
    const id = r.u8();
    const size = r.u32();
    const contentStart = r.pos;
    r.skip(size);
    yield { id, start, contentStart, end: r.pos };
  }
}

// ---- core modules: memory caps ----

/** One memory of a core module, in 64 KiB pages. */
export interface MemoryLimits {
  minPages: bigint;
  maxPages: bigint | undefined;
  imported: boolean;
}

export type CapResult =
  | { ok: true; bytes: Uint8Array; memories: MemoryLimits[] }
  | { ok: false; reason: string; memories: MemoryLimits[] };

interface LimitsPatch {
  start: number;
  end: number;
  replacement: Uint8Array;
}

function readMemoryLimits(r: Reader, capPages: bigint, imported: boolean) {
  const start = r.pos;
  const flags = r.u8();
  if ((flags & ~LIMITS_KNOWN) !== 0) r.fail(`memory limits flags 0x${flags.toString(16)}`, start);
  const bits = flags & LIMITS_MEMORY64 ? 64 : 32;
  const minPages = r.leb(bits);
  const maxPages = flags & LIMITS_HAS_MAX ? r.leb(bits) : undefined;
  const cappedMax = maxPages === undefined || maxPages > capPages ? capPages : maxPages;
  const replacement = concat([
    Uint8Array.of(flags | LIMITS_HAS_MAX),
    encodeLeb(minPages),
    encodeLeb(cappedMax),
  ]);
  const limits: MemoryLimits = { minPages, maxPages, imported };
  return { limits, patch: { start, end: r.pos, replacement } };
}

/** Skips a core `reftype` or `valtype`, including the typed-reference forms (0x63/0x64 ht). */
function skipValType(r: Reader): void {
  const byte = r.u8();
  if (byte === 0x63 || byte === 0x64) r.leb(33);
}

/** Skips table limits (flags, min, optional max; table64 uses 64-bit LEBs). */
function skipTableLimits(r: Reader): void {
  const flags = r.u8();
  const bits = flags & LIMITS_MEMORY64 ? 64 : 32;
  r.leb(bits);
  if (flags & LIMITS_HAS_MAX) r.leb(bits);
}

function scanImports(r: Reader, capPages: bigint, out: ReturnType<typeof readMemoryLimits>[]) {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    r.name();
    r.name();
    const kind = r.u8();
    if (kind === 0x00) r.u32();
    else if (kind === 0x01) {
      skipValType(r);
      skipTableLimits(r);
    } else if (kind === 0x02) out.push(readMemoryLimits(r, capPages, true));
    else if (kind === 0x03) {
      skipValType(r);
      r.u8();
    } else if (kind === 0x04) {
      r.u8();
      r.u32();
    } else r.fail(`import kind 0x${kind.toString(16)}`);
  }
}

function rebuildSection(bytes: Uint8Array, s: Section, patches: readonly LimitsPatch[]) {
  const parts: Uint8Array[] = [];
  let at = s.contentStart;
  for (const p of patches) {
    parts.push(bytes.subarray(at, p.start), p.replacement);
    at = p.end;
  }
  parts.push(bytes.subarray(at, s.end));
  const content = concat(parts);
  return concat([Uint8Array.of(s.id), encodeLeb(content.length), content]);
}

/**
 * Rewrites every memory a core module defines or imports so that its maximum is at most
 * `capBytes` (rounded down to whole pages); everything else is copied verbatim. Refuses (ok:
 * false) when a memory's minimum is already above the cap: the module could not even start.
 * @throws RangeError for a malformed module
 */
export function capModuleMemory(bytes: Uint8Array, capBytes: number): CapResult {
  if (wasmKind(bytes) !== 'core-module') throw new RangeError('not a core wasm module');
  const capPages = BigInt(Math.floor(capBytes / WASM_PAGE_BYTES));
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  const memories: MemoryLimits[] = [];
  for (const s of sections(bytes)) {
    if (s.id !== CORE_SECTION_IMPORT && s.id !== CORE_SECTION_MEMORY) {
      parts.push(bytes.subarray(s.start, s.end));
      continue;
    }
    const r = new Reader(bytes, s.contentStart, s.end);
    const found: ReturnType<typeof readMemoryLimits>[] = [];
    if (s.id === CORE_SECTION_IMPORT) scanImports(r, capPages, found);
    else {
      const count = r.u32();
      for (let i = 0; i < count; i++) found.push(readMemoryLimits(r, capPages, false));
    }
    if (r.pos !== s.end) r.fail(`section ${s.id} has trailing bytes`);
    memories.push(...found.map((f) => f.limits));
    parts.push(
      found.length
        ? rebuildSection(
            bytes,
            s,
            found.map((f) => f.patch),
          )
        : bytes.subarray(s.start, s.end),
    );
  }
  const reason = memoryCapRefusal(memories, capBytes);
  if (reason !== undefined) return { ok: false, reason, memories };
  return { ok: true, bytes: concat(parts), memories };
}

/**
 * Why a memory cap of `capBytes` cannot even start a module with these memories (a minimum
 * above the cap), or undefined when it can.
 */
export function memoryCapRefusal(
  memories: readonly MemoryLimits[],
  capBytes: number,
): string | undefined {
  const capPages = BigInt(Math.floor(capBytes / WASM_PAGE_BYTES));
  const over = memories.find((m) => m.minPages > capPages);
  if (!over) return undefined;
  const minBytes = over.minPages * BigInt(WASM_PAGE_BYTES);
  return `its memory needs at least ${minBytes} bytes at start, above the cap of ${capBytes} bytes`;
}

/**
 * Every memory the core modules of a component define or import (nested components' modules
 * included), for engines that cap memory at run time instead of rewriting the modules.
 * @throws RangeError for a malformed component or module
 */
export function componentMemories(component: Uint8Array): MemoryLimits[] {
  if (wasmKind(component) !== 'component') throw new RangeError('not a WebAssembly component');
  const memories: MemoryLimits[] = [];
  for (const s of sections(component)) {
    const body = component.subarray(s.contentStart, s.end);
    // capModuleMemory reads every memory on its way; the rewritten copy is not needed here.
    if (s.id === COMPONENT_SECTION_CORE_MODULE) memories.push(...capModuleMemory(body, 0).memories);
    else if (s.id === COMPONENT_SECTION_COMPONENT) memories.push(...componentMemories(body));
  }
  return memories;
}

// ---- components: names and custom sections ----

export interface CustomSection {
  name: string;
  data: Uint8Array;
}

export interface ComponentNames {
  /** top-level import names, e.g. 'vfiobox:device/irq@0.1.0' */
  imports: string[];
  /** top-level export names, e.g. 'vfiobox:device/device@0.1.0' */
  exports: string[];
  /** top-level custom sections (nested modules' ones are not included) */
  custom: CustomSection[];
}

/** `importname'`/`exportname'`: a discriminator byte (0x00, or the historical 0x01) and a name. */
function externName(r: Reader): string {
  const tag = r.u8();
  if (tag !== 0x00 && tag !== 0x01) r.fail(`extern name tag 0x${tag.toString(16)}`, r.pos - 1);
  return r.name();
}

/** Skips an `externdesc` (Binary.md "Import and Export Definitions"). */
function skipExternDesc(r: Reader): void {
  const kind = r.u8();
  if (kind === 0x00) {
    r.u8(); // 0x11: core module
    r.u32();
  } else if (kind === 0x02 || kind === 0x03) {
    const bound = r.u8();
    if (kind === 0x02 || bound === 0x00) r.leb(33); // value: index or valtype; type: eq index
  } else if (kind === 0x01 || kind === 0x04 || kind === 0x05) r.u32();
  else r.fail(`externdesc kind 0x${kind.toString(16)}`, r.pos - 1);
}

function readImports(r: Reader, out: string[]): void {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    out.push(externName(r));
    skipExternDesc(r);
  }
}

function readExports(r: Reader, out: string[]): void {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    out.push(externName(r));
    const sort = r.u8();
    if (sort === 0x00) r.u8(); // core sort
    r.u32();
    const hasType = r.u8();
    if (hasType === 0x01) skipExternDesc(r);
    else if (hasType !== 0x00) r.fail('export type flag');
  }
}

/**
 * Reads the top-level names and custom sections of a component.
 * @throws RangeError for anything that is not a well-formed component at this level
 */
export function readComponentNames(bytes: Uint8Array): ComponentNames {
  const kind = wasmKind(bytes);
  if (kind === 'core-module') {
    throw new RangeError('a core wasm module, not a component (wrap it: wasm-tools component new)');
  }
  if (kind !== 'component') throw new RangeError('not a WebAssembly component (bad preamble)');
  const names: ComponentNames = { imports: [], exports: [], custom: [] };
  for (const s of sections(bytes)) {
    const r = new Reader(bytes, s.contentStart, s.end);
    if (s.id === COMPONENT_SECTION_IMPORT) readImports(r, names.imports);
    else if (s.id === COMPONENT_SECTION_EXPORT) readExports(r, names.exports);
    else if (s.id === SECTION_CUSTOM) {
      const name = r.name();
      names.custom.push({ name, data: bytes.slice(r.pos, s.end) });
      r.pos = s.end;
    } else continue;
    if (r.pos !== s.end) r.fail(`section ${s.id} has trailing bytes`);
  }
  return names;
}

/** A custom section (id 0) holding `data` under `name`, ready to append to a module or component. */
export function encodeCustomSection(name: string, data: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const content = concat([encodeLeb(nameBytes.length), nameBytes, data]);
  return concat([Uint8Array.of(SECTION_CUSTOM), encodeLeb(content.length), content]);
}

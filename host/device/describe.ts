// SPDX-License-Identifier: MIT
// Validation of a plugin's `describe()` answer (wit/vfiobox-device/0.1.0/types.wit
// `device-description`). The answer is untrusted input: everything the config-space emulation
// and the access routing rely on is checked here once, and what comes out is a frozen, normalised
// copy the plugin can no longer change. Rules are the PCI Local Bus Specification 3.0's
// (BAR sizing 6.2.5.1, MSI 6.8.1, MSI-X 6.8.2), narrowed where the host needs it:
// - BAR sizes are capped at 2^48 so they fit a JS number (RegionLayout.sizeBytes);
// - I/O BARs are at most 256 bytes (the spec's limit for one I/O BAR, 6.2.5.1).
// Every failure is PluginError kind 'invalid' whose message names the field path.

import { PluginError } from '../errors.js';
import type {
  BarDescription,
  BarKind,
  ClaimedRange,
  DeviceDescription,
  IntxPin,
  MemoryArea,
  MsixLayout,
} from '../plugins/engine.js';

/** Largest BAR the host accepts (see the header comment). */
export const MAX_BAR_BYTES = 1n << 48n;
/** PCI_MSIX_FLAGS_QSIZE + 1 (linux/pci_regs.h): at most 2048 MSI-X vectors. */
export const MAX_MSIX_VECTORS = 2048;
/** Bytes per MSI-X table entry (PCI_MSIX_ENTRY_SIZE). */
export const MSIX_ENTRY_BYTES = 16;

const KINDS: readonly BarKind[] = ['mem32', 'mem64', 'io'];
const PINS: readonly IntxPin[] = ['a', 'b', 'c', 'd'];
const MSI_COUNTS = [0, 1, 2, 4, 8, 16, 32];

/** Bytes of the MSI-X pending-bit array for `vectors` vectors: whole QWORDs (6.8.2.7). */
export function msixPbaBytes(vectors: number): number {
  return Math.ceil(vectors / 64) * 8;
}

class Checker {
  constructor(
    readonly plugin: string,
    readonly exportName = 'describe',
  ) {}

  fail(path: string, expected: string, got: unknown): never {
    throw new PluginError(
      this.plugin,
      this.exportName,
      'invalid',
      `${path}: expected ${expected}, got ${shown(got)}`,
    );
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, 'a record', value);
    }
    return value as Record<string, unknown>;
  }

  int(value: unknown, path: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(path, `an integer ${hex(min)}..${hex(max)}`, value);
    }
    return value;
  }

  /** u64 fields arrive as bigint from jco; a plain integer number is accepted too. */
  u64(value: unknown, path: string): bigint {
    if (typeof value === 'bigint' && value >= 0n && value < 1n << 64n) return value;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      return BigInt(value);
    }
    return this.fail(path, 'a u64', value);
  }

  list(value: unknown, path: string, max: number): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'a list', value);
    if (value.length > max) this.fail(path, `at most ${max} entries`, `${value.length} entries`);
    return value;
  }
}

function hex(n: number): string {
  return n > 255 ? `0x${n.toString(16)}` : String(n);
}

function shown(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? '?';
  } catch {
    return String(value);
  }
}

function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

function checkBar(c: Checker, raw: unknown, path: string): BarDescription {
  const r = c.object(raw, path);
  const index = c.int(r.index, `${path}.index`, 0, 5);
  const kind = r.kind as BarKind;
  if (!KINDS.includes(kind)) c.fail(`${path}.kind`, `one of ${KINDS.join(', ')}`, r.kind);
  if (typeof r.prefetchable !== 'boolean') {
    c.fail(`${path}.prefetchable`, 'true or false', r.prefetchable);
  }
  const sizeBytes = c.u64(r.sizeBytes, `${path}.sizeBytes`);
  const min = kind === 'io' ? 4n : 16n;
  const max = kind === 'io' ? 256n : kind === 'mem32' ? 1n << 31n : MAX_BAR_BYTES;
  if (!isPowerOfTwo(sizeBytes) || sizeBytes < min || sizeBytes > max) {
    c.fail(`${path}.sizeBytes`, `a power of two ${min}..${max}`, sizeBytes);
  }
  if (kind === 'io' && r.prefetchable) c.fail(`${path}.prefetchable`, 'false for io', true);
  if (kind === 'mem64' && index > 4) c.fail(`${path}.index`, '0..4 for mem64', index);
  return { index, sizeBytes, kind, prefetchable: r.prefetchable as boolean };
}

function checkBars(c: Checker, raw: unknown): BarDescription[] {
  const bars = c.list(raw, 'bars', 6).map((b, i) => checkBar(c, b, `bars[${i}]`));
  const owner: (number | undefined)[] = [];
  bars.forEach((bar, i) => {
    const slots = bar.kind === 'mem64' ? [bar.index, bar.index + 1] : [bar.index];
    for (const slot of slots) {
      const other = owner[slot];
      if (other !== undefined) {
        c.fail(`bars[${i}].index`, `a BAR slot not used by bars[${other}]`, bar.index);
      }
      owner[slot] = i;
    }
  });
  return bars.sort((a, b) => a.index - b.index);
}

function memBar(c: Checker, bars: BarDescription[], value: unknown, path: string) {
  const index = c.int(value, path, 0, 5);
  const bar = bars.find((b) => b.index === index);
  if (!bar || bar.kind === 'io') c.fail(path, 'an implemented memory BAR', index);
  return bar;
}

interface Span {
  bar: number;
  start: bigint;
  end: bigint;
  what: string;
}

function overlaps(a: Span, b: Span): boolean {
  return a.bar === b.bar && a.start < b.end && b.start < a.end;
}

function checkMsix(c: Checker, raw: unknown, bars: BarDescription[]): MsixLayout {
  const r = c.object(raw, 'irqs.msix');
  const vectors = c.int(r.vectors, 'irqs.msix.vectors', 1, MAX_MSIX_VECTORS);
  const tableBar = memBar(c, bars, r.tableBar, 'irqs.msix.tableBar');
  const pbaBar = memBar(c, bars, r.pbaBar, 'irqs.msix.pbaBar');
  const tableOffset = c.int(r.tableOffset, 'irqs.msix.tableOffset', 0, 0xffff_fff8);
  const pbaOffset = c.int(r.pbaOffset, 'irqs.msix.pbaOffset', 0, 0xffff_fff8);
  // The low 3 bits of the Table/PBA Offset registers hold the BIR (6.8.2.4, 6.8.2.5).
  if (tableOffset % 8) c.fail('irqs.msix.tableOffset', 'a multiple of 8', tableOffset);
  if (pbaOffset % 8) c.fail('irqs.msix.pbaOffset', 'a multiple of 8', pbaOffset);
  const table: Span = {
    bar: tableBar.index,
    start: BigInt(tableOffset),
    end: BigInt(tableOffset + vectors * MSIX_ENTRY_BYTES),
    what: 'table',
  };
  const pba: Span = {
    bar: pbaBar.index,
    start: BigInt(pbaOffset),
    end: BigInt(pbaOffset + msixPbaBytes(vectors)),
    what: 'PBA',
  };
  if (table.end > tableBar.sizeBytes) {
    c.fail('irqs.msix.tableOffset', `a table inside BAR${tableBar.index}`, tableOffset);
  }
  if (pba.end > pbaBar.sizeBytes) {
    c.fail('irqs.msix.pbaOffset', `a PBA inside BAR${pbaBar.index}`, pbaOffset);
  }
  if (overlaps(table, pba)) c.fail('irqs.msix.pbaOffset', 'a PBA clear of the table', pbaOffset);
  return { vectors, tableBar: tableBar.index, tableOffset, pbaBar: pbaBar.index, pbaOffset };
}

function checkClaims(c: Checker, raw: unknown, bars: BarDescription[], msix?: MsixLayout) {
  const claims = c.list(raw, 'claimedRanges', 64).map((item, i): ClaimedRange => {
    const path = `claimedRanges[${i}]`;
    const r = c.object(item, path);
    const bar = c.int(r.bar, `${path}.bar`, 0, 5);
    const desc = bars.find((b) => b.index === bar);
    if (!desc) c.fail(`${path}.bar`, 'an implemented BAR', bar);
    const offset = c.u64(r.offset, `${path}.offset`);
    const lengthBytes = c.u64(r.lengthBytes, `${path}.lengthBytes`);
    if (lengthBytes === 0n || offset + lengthBytes > desc.sizeBytes) {
      c.fail(path, `a non-empty range inside BAR${bar} (${desc.sizeBytes} bytes)`, r);
    }
    return { bar, offset, lengthBytes };
  });
  if (!msix) return claims;
  // The host emulates the table and PBA, so no plugin may interpose on them (types.wit).
  const emulated: Span[] = [
    {
      bar: msix.tableBar,
      start: BigInt(msix.tableOffset),
      end: BigInt(msix.tableOffset + msix.vectors * MSIX_ENTRY_BYTES),
      what: 'MSI-X table',
    },
    {
      bar: msix.pbaBar,
      start: BigInt(msix.pbaOffset),
      end: BigInt(msix.pbaOffset + msixPbaBytes(msix.vectors)),
      what: 'MSI-X PBA',
    },
  ];
  claims.forEach((cl, i) => {
    const span = { bar: cl.bar, start: cl.offset, end: cl.offset + cl.lengthBytes, what: '' };
    for (const e of emulated) {
      if (overlaps(span, e)) c.fail(`claimedRanges[${i}]`, `a range clear of the ${e.what}`, cl);
    }
  });
  return claims;
}

/**
 * Checks an untrusted `describe()` answer and returns a frozen, normalised copy (BARs sorted by
 * index, u64 fields as bigint, `intx` undefined when absent). Throws PluginError kind 'invalid'.
 */
export function validateDescription(plugin: string, raw: unknown): DeviceDescription {
  const c = new Checker(plugin);
  const r = c.object(raw, '(description)');
  const bars = checkBars(c, r.bars);
  const irqs = c.object(r.irqs, 'irqs');
  const intx = irqs.intx === null || irqs.intx === undefined ? undefined : (irqs.intx as IntxPin);
  if (intx !== undefined && !PINS.includes(intx)) {
    c.fail('irqs.intx', `one of ${PINS.join(', ')} or none`, irqs.intx);
  }
  const msiVectors = c.int(irqs.msiVectors, 'irqs.msiVectors', 0, 32);
  if (!MSI_COUNTS.includes(msiVectors)) {
    c.fail('irqs.msiVectors', '0 or a power of two up to 32', msiVectors);
  }
  const msix =
    irqs.msix === null || irqs.msix === undefined ? undefined : checkMsix(c, irqs.msix, bars);
  const desc: DeviceDescription = {
    vendorId: c.int(r.vendorId, 'vendorId', 0, 0xffff),
    deviceId: c.int(r.deviceId, 'deviceId', 0, 0xffff),
    subsystemVendorId: c.int(r.subsystemVendorId, 'subsystemVendorId', 0, 0xffff),
    subsystemId: c.int(r.subsystemId, 'subsystemId', 0, 0xffff),
    classCode: c.int(r.classCode, 'classCode', 0, 0xff_ffff),
    revision: c.int(r.revision, 'revision', 0, 0xff),
    bars,
    irqs: { intx, msiVectors, msix },
    claimedRanges: checkClaims(c, r.claimedRanges, bars, msix),
  };
  return deepFreeze(desc);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** At most this many memory areas (memory.wit `memory-areas.areas`). */
export const MAX_MEMORY_AREAS = 16;
const PAGE = 4096n;

function msixSpans(msix: MsixLayout | undefined): Span[] {
  if (!msix) return [];
  const tableEnd = msix.tableOffset + msix.vectors * MSIX_ENTRY_BYTES;
  const pbaEnd = msix.pbaOffset + msixPbaBytes(msix.vectors);
  return [
    {
      bar: msix.tableBar,
      start: BigInt(msix.tableOffset),
      end: BigInt(tableEnd),
      what: 'MSI-X table',
    },
    { bar: msix.pbaBar, start: BigInt(msix.pbaOffset), end: BigInt(pbaEnd), what: 'MSI-X PBA' },
  ];
}

/**
 * Checks an untrusted `memory-areas.areas()` answer against the validated description: whole
 * 4 KiB pages inside a memory BAR, not overlapping each other, the MSI-X table or PBA, or a
 * claimed range. Returns a frozen copy sorted by BAR and offset; throws PluginError 'invalid'.
 */
export function validateMemoryAreas(
  plugin: string,
  desc: DeviceDescription,
  raw: unknown,
): readonly MemoryArea[] {
  const c = new Checker(plugin, 'memory-areas.areas');
  const areas = c.list(raw, 'areas', MAX_MEMORY_AREAS).map((item, i): MemoryArea => {
    const path = `areas[${i}]`;
    const r = c.object(item, path);
    const bar = memBar(c, desc.bars, r.bar, `${path}.bar`);
    const offset = c.u64(r.offset, `${path}.offset`);
    const lengthBytes = c.u64(r.lengthBytes, `${path}.lengthBytes`);
    if (offset % PAGE !== 0n) c.fail(`${path}.offset`, 'a multiple of 4096', offset);
    if (lengthBytes === 0n || lengthBytes % PAGE !== 0n) {
      c.fail(`${path}.lengthBytes`, 'a non-zero multiple of 4096', lengthBytes);
    }
    if (offset + lengthBytes > bar.sizeBytes) {
      c.fail(path, `an area inside BAR${bar.index} (${bar.sizeBytes} bytes)`, r);
    }
    return { bar: bar.index, offset, lengthBytes };
  });
  const spans: Span[] = areas.map((a, i) => ({
    bar: a.bar,
    start: a.offset,
    end: a.offset + a.lengthBytes,
    what: `areas[${i}]`,
  }));
  const others = [
    ...msixSpans(desc.irqs.msix),
    ...desc.claimedRanges.map((cl, i) => ({
      bar: cl.bar,
      start: cl.offset,
      end: cl.offset + cl.lengthBytes,
      what: `claimedRanges[${i}]`,
    })),
  ];
  spans.forEach((span, i) => {
    for (const other of [...spans.slice(0, i), ...others]) {
      if (overlaps(span, other)) c.fail(span.what, `an area clear of ${other.what}`, areas[i]);
    }
  });
  areas.sort((a, b) => a.bar - b.bar || (a.offset < b.offset ? -1 : 1));
  return deepFreeze(areas);
}

/** A canonical text of a validated description (or areas), for "must not change" comparisons. */
export function descriptionKey(desc: DeviceDescription | readonly MemoryArea[]): string {
  return JSON.stringify(desc, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/** The number of vectors a plugin may raise: the most any enabled mechanism can deliver. */
export function vectorCount(desc: DeviceDescription): number {
  return Math.max(desc.irqs.msix?.vectors ?? 0, desc.irqs.msiVectors, desc.irqs.intx ? 1 : 0);
}

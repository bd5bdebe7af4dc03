// SPDX-License-Identifier: MIT
// What a plugin may touch, and the checks in front of every host import (DESIGN.md "Isolation
// and failure model", Zed's CapabilityGranter idea). A Grant is the intersection of what the
// manifest requests and what the user's policy allows (grantFromManifest); applyGrants wraps the
// raw host imports so that each call is checked against it:
// - irq, dma and region calls outside the grant fail with WitError('not-granted') (the plugin
//   sees `err(not-granted)`, the VMM nothing) and are counted in denied[<interface>];
// - a DMA transfer over DMA_MAX_TRANSFER_BYTES fails with WitError('too-large') before any
//   check or copy (types.wit: "split the transfer");
// - log lines without the grant or over the rate limit, clock and byte-stream calls without
//   the grant are dropped (those functions have no error case) and counted;
// - shared-memory calls (0.1.1) reach only the plugin's own memory areas (as its memory-areas
//   export declared them): outside its BARs `out-of-range`, inside a BAR but outside every
//   area (or without the grant) `not-granted`, over DMA_MAX_TRANSFER_BYTES `invalid-width`.
// dma.map-window (0.1.2) is granted by the same DMA grant (read access for a window that is not
// writable, read and write for a writable one), checked once at map time by the engine that
// maps it (wasmtime, natively, from directDmaGrant); it has no wrapper here.
// The wrappers allocate nothing on the success path.

import { ConfigError } from '../errors.js';
import type { AccessWidth, DmaTarget, HostImports, LogLevel, MemoryArea } from './engine.js';
import { copyInto, copyOut, WitError } from './engine.js';
import type { Capabilities, DmaAccess, DmaWindow, Manifest, RegionRange } from './manifest.js';
import type { Policy } from './policy.js';

export interface Grant {
  /** vectors the plugin may raise/lower */
  irqVectors: 'all' | number[];
  dma: 'none' | 'all' | DmaWindow[];
  /** passthrough only */
  regions: RegionRange[];
  log: boolean;
  clock: boolean;
  byteStream: boolean;
  /** the plugin's own memory areas (shared-memory); never more than that */
  sharedMemory: boolean;
  /** log rate limit; default DEFAULT_LOG_LINES_PER_SECOND */
  logLinesPerSecond?: number;
}

export const DEFAULT_LOG_LINES_PER_SECOND = 100;
/** Per-call DMA limit (types.wit dma-error.too-large). */
export const DMA_MAX_TRANSFER_BYTES = 1 << 20;
export const PIN_ERROR = 'ERR_VFIOBOX_PLUGIN_PIN';

export const NO_GRANT: Readonly<Grant> = Object.freeze({
  irqVectors: [],
  dma: 'none',
  regions: [],
  log: false,
  clock: false,
  byteStream: false,
  sharedMemory: false,
});

// ---- intersections: the policy narrows, never widens ----

function intersectVectors(a: Grant['irqVectors'], b: Grant['irqVectors']): Grant['irqVectors'] {
  if (a === 'all') return b === 'all' ? 'all' : [...b];
  if (b === 'all') return [...a];
  const keep = new Set(b);
  return a.filter((v) => keep.has(v));
}

function intersectAccess(a: DmaAccess, b: DmaAccess): DmaAccess | undefined {
  const r = a.includes('r') && b.includes('r');
  const w = a.includes('w') && b.includes('w');
  return r && w ? 'rw' : r ? 'r' : w ? 'w' : undefined;
}

function overlap(aStart: bigint, aLen: bigint, bStart: bigint, bLen: bigint) {
  const start = aStart > bStart ? aStart : bStart;
  const aEnd = aStart + aLen;
  const bEnd = bStart + bLen;
  // biome-ignore lint/complexity/useMathMinMax: bigints; Math.min takes numbers only
  const end = aEnd < bEnd ? aEnd : bEnd;
  return end > start ? { start, length: end - start } : undefined;
}

function intersectDma(a: Grant['dma'], b: Grant['dma']): Grant['dma'] {
  if (a === 'none' || b === 'none') return 'none';
  if (a === 'all') return b === 'all' ? 'all' : b.map((w) => ({ ...w }));
  if (b === 'all') return a.map((w) => ({ ...w }));
  const out: DmaWindow[] = [];
  for (const x of a) {
    for (const y of b) {
      const o = overlap(x.iova, x.sizeBytes, y.iova, y.sizeBytes);
      const access = intersectAccess(x.access, y.access);
      if (o && access) out.push({ iova: o.start, sizeBytes: o.length, access });
    }
  }
  return out.length ? out : 'none';
}

function intersectRegions(a: RegionRange[], b: RegionRange[]): RegionRange[] {
  const out: RegionRange[] = [];
  for (const x of a) {
    for (const y of b) {
      const o = x.bar === y.bar && overlap(x.offset, x.lengthBytes, y.offset, y.lengthBytes);
      if (o) out.push({ bar: x.bar, offset: o.start, lengthBytes: o.length });
    }
  }
  return out;
}

function grantOf(caps: Capabilities): Grant {
  return {
    irqVectors: caps.irq.vectors === 'all' ? 'all' : [...caps.irq.vectors],
    dma: caps.dma === 'none' || caps.dma === 'all' ? caps.dma : caps.dma.map((w) => ({ ...w })),
    regions: caps.regions.map((r) => ({ ...r })),
    log: caps.log,
    clock: caps.clock,
    byteStream: caps.byteStream,
    sharedMemory: caps.sharedMemory,
  };
}

/**
 * The grant for a plugin: its manifest's requests, narrowed by its policy entry. Without a
 * policy, or for a plugin the policy does not list under `unlisted: "requested"`, the grant is
 * what the manifest requests; under `unlisted: "deny"` it is nothing.
 * @param sha256 the plugin file's hash, checked against the entry's pin
 * @throws ConfigError when the entry pins a different sha256 (or one that cannot be checked)
 */
export function grantFromManifest(manifest: Manifest, policy?: Policy, sha256?: string): Grant {
  const requested = grantOf(manifest.capabilities);
  if (!policy) return requested;
  const entry = policy.plugins[manifest.name];
  if (!entry)
    return policy.unlisted === 'deny' ? { ...NO_GRANT, irqVectors: [], regions: [] } : requested;
  if (entry.sha256 !== undefined && entry.sha256 !== sha256?.toLowerCase()) {
    throw new ConfigError(
      PIN_ERROR,
      `plugin '${manifest.name}' is pinned by ${policy.source} to sha256 ${entry.sha256}, ` +
        `but this file's sha256 is ${sha256 ?? '(not computed)'}`,
      'rebuild the plugin you pinned, or update the pin if you trust the new build',
    );
  }
  const p = entry.capabilities;
  const grant: Grant = {
    irqVectors: p.irq
      ? intersectVectors(requested.irqVectors, p.irq.vectors)
      : requested.irqVectors,
    dma: p.dma ? intersectDma(requested.dma, p.dma) : requested.dma,
    regions: p.regions ? intersectRegions(requested.regions, p.regions) : requested.regions,
    log: requested.log && (p.log ?? true),
    clock: requested.clock && (p.clock ?? true),
    byteStream: requested.byteStream && (p.byteStream ?? true),
    sharedMemory: requested.sharedMemory && (p.sharedMemory ?? true),
  };
  if (entry.logLinesPerSecond !== undefined) grant.logLinesPerSecond = entry.logLinesPerSecond;
  return grant;
}

// ---- the checks ----

function windowAllows(windows: readonly DmaWindow[], iova: bigint, len: number, access: 'r' | 'w') {
  const end = iova + BigInt(len);
  for (const w of windows) {
    if (iova >= w.iova && end <= w.iova + w.sizeBytes && w.access.includes(access)) return true;
  }
  return false;
}

function regionAllows(ranges: readonly RegionRange[], bar: number, offset: bigint, width: number) {
  const end = offset + BigInt(width);
  for (const r of ranges) {
    if (r.bar === bar && offset >= r.offset && end <= r.offset + r.lengthBytes) return true;
  }
  return false;
}

export interface ApplyGrantOptions {
  /** monotonic milliseconds for the log rate limit; default performance.now */
  nowMs?: () => number;
  /**
   * the plugin's memory areas and BAR sizes for the shared-memory checks, asked at each call
   * (they are known only once the instance has answered describe and memory-areas); default
   * none, so every shared-memory call is refused
   */
  memoryLayout?: () => MemoryLayout | undefined;
}

/** What the shared-memory checks compare against: BAR sizes by index, and the areas. */
export interface MemoryLayout {
  barSizes: ReadonlyMap<number, bigint>;
  areas: readonly MemoryArea[];
}

/** `access-error` for a shared-memory call, or undefined when it may go ahead. */
function memoryRefusal(
  layout: MemoryLayout | undefined,
  bar: number,
  offset: bigint,
  len: number,
): 'out-of-range' | 'not-granted' | 'invalid-width' | undefined {
  if (len > DMA_MAX_TRANSFER_BYTES) return 'invalid-width';
  const barSize = layout?.barSizes.get(bar);
  const end = offset + BigInt(len);
  if (barSize === undefined || offset < 0n || end > barSize) return 'out-of-range';
  for (const a of layout?.areas ?? []) {
    if (a.bar === bar && offset >= a.offset && end <= a.offset + a.lengthBytes) return undefined;
  }
  return 'not-granted';
}

/** A token bucket of `perSecond` lines, holding at most one second's worth. */
function logLimiter(perSecond: number, nowMs: () => number): () => boolean {
  let tokens = perSecond;
  let last = nowMs();
  return () => {
    const now = nowMs();
    tokens = Math.min(perSecond, tokens + ((now - last) * perSecond) / 1000);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/**
 * A DMA grant in the form a native DMA port checks it (the vfio-user server's direct route,
 * native/src/js/vfio_user_direct.cc): the same windows, directions and per-call limit as
 * applyGrants' dma checks. A port copies only what this allows and leaves every other call to
 * applyGrants, which refuses and counts it. The port also checks dma.map-window (0.1.2)
 * against it: read access, plus write for a writable window.
 */
export interface DirectDmaGrant {
  /** grant.dma === 'all' */
  all: boolean;
  /** [iova, size, access: 1 read | 2 write | 3 both]; ignored when `all` */
  windows: [bigint, bigint, number][];
  /** per-call limit (DMA_MAX_TRANSFER_BYTES) */
  maxBytes: number;
}

const ACCESS_BITS: Readonly<Record<DmaAccess, number>> = { r: 1, w: 2, rw: 3 };

export function directDmaGrant(grant: Grant): DirectDmaGrant {
  const dma = grant.dma;
  return {
    all: dma === 'all',
    windows:
      dma === 'all' || dma === 'none'
        ? []
        : dma.map((w) => [w.iova, w.sizeBytes, ACCESS_BITS[w.access]]),
    maxBytes: DMA_MAX_TRANSFER_BYTES,
  };
}

/**
 * Wraps `raw` so that every call is checked against `grant`; refusals are counted in `denied`
 * by interface name ('irq', 'dma', 'region', 'log', 'clock', 'byte-stream').
 */
export function applyGrants(
  raw: HostImports,
  grant: Grant,
  denied: Record<string, number>,
  options: ApplyGrantOptions = {},
): HostImports {
  const deny = (iface: string) => {
    denied[iface] = (denied[iface] ?? 0) + 1;
  };
  const vectors = grant.irqVectors === 'all' ? undefined : new Set(grant.irqVectors);
  const irqOk = (v: number) => vectors === undefined || vectors.has(v);
  const dma = grant.dma;
  const dmaOk = (iova: bigint, len: number, access: 'r' | 'w') =>
    dma === 'all' || (dma !== 'none' && windowAllows(dma, iova, len, access));
  const logOk = logLimiter(
    grant.logLinesPerSecond ?? DEFAULT_LOG_LINES_PER_SECOND,
    options.nowMs ?? (() => performance.now()),
  );
  const notGranted = (iface: string): WitError => {
    deny(iface);
    return new WitError('not-granted');
  };
  const checked: HostImports = {
    irq: {
      raise(vector: number) {
        if (!irqOk(vector)) throw notGranted('irq');
        raw.irq.raise(vector);
      },
      lower(vector: number) {
        if (!irqOk(vector)) throw notGranted('irq');
        raw.irq.lower(vector);
      },
      isMasked(vector: number) {
        if (irqOk(vector)) return raw.irq.isMasked(vector);
        deny('irq');
        return true; // irq.wit: unknown vectors read as masked
      },
    },
    dma: {
      read(iova: bigint, len: number) {
        if (len > DMA_MAX_TRANSFER_BYTES) throw new WitError('too-large');
        if (!dmaOk(iova, len, 'r')) throw notGranted('dma');
        return raw.dma.read(iova, len);
      },
      write(iova: bigint, data: Uint8Array) {
        if (data.length > DMA_MAX_TRANSFER_BYTES) throw new WitError('too-large');
        if (!dmaOk(iova, data.length, 'w')) throw notGranted('dma');
        raw.dma.write(iova, data);
      },
      // the engine's one-copy paths: the same checks, before anything is allocated or copied
      readInto(iova: bigint, len: number, target: DmaTarget) {
        if (len > DMA_MAX_TRANSFER_BYTES) throw new WitError('too-large');
        if (!dmaOk(iova, len, 'r')) throw notGranted('dma');
        const fast = raw.dma.readInto;
        return fast ? fast(iova, len, target) : copyInto(raw.dma.read(iova, len), target);
      },
      writeFrom(iova: bigint, memory: ArrayBuffer, offset: number, len: number) {
        if (len > DMA_MAX_TRANSFER_BYTES) throw new WitError('too-large');
        if (!dmaOk(iova, len, 'w')) throw notGranted('dma');
        const fast = raw.dma.writeFrom;
        if (fast) fast(iova, memory, offset, len);
        else raw.dma.write(iova, copyOut(memory, offset, len));
      },
    },
    log: {
      log(level: LogLevel, message: string) {
        if (grant.log && logOk()) raw.log.log(level, message);
        else deny('log');
      },
    },
    clock: grant.clock ? raw.clock : deniedClock(deny),
    byteStream: grant.byteStream ? raw.byteStream : deniedStream(deny),
  };
  if (raw.sharedMemory) {
    checked.sharedMemory = checkedMemory(raw.sharedMemory, grant, options, deny);
  }
  if (raw.region) {
    const region = raw.region;
    checked.region = {
      read(bar: number, offset: bigint, width: AccessWidth) {
        if (!regionAllows(grant.regions, bar, offset, width)) throw notGranted('region');
        return region.read(bar, offset, width);
      },
      write(bar: number, offset: bigint, width: AccessWidth, value: bigint) {
        if (!regionAllows(grant.regions, bar, offset, width)) throw notGranted('region');
        region.write(bar, offset, width, value);
      },
    };
  }
  return checked;
}

function checkedMemory(
  raw: NonNullable<HostImports['sharedMemory']>,
  grant: Grant,
  options: ApplyGrantOptions,
  deny: (iface: string) => void,
): NonNullable<HostImports['sharedMemory']> {
  const layout = options.memoryLayout ?? (() => undefined);
  const check = (bar: number, offset: bigint, len: number) => {
    const refusal = grant.sharedMemory ? memoryRefusal(layout(), bar, offset, len) : 'not-granted';
    if (refusal === undefined) return;
    deny('shared-memory');
    throw new WitError(refusal);
  };
  return {
    read(bar: number, offset: bigint, len: number) {
      check(bar, offset, len);
      return raw.read(bar, offset, len);
    },
    write(bar: number, offset: bigint, data: Uint8Array) {
      check(bar, offset, data.length);
      raw.write(bar, offset, data);
    },
  };
}

function deniedClock(deny: (iface: string) => void): HostImports['clock'] {
  return {
    nowNs() {
      deny('clock');
      return 0n;
    },
    setTimer() {
      deny('clock');
    },
    cancelTimer() {
      deny('clock');
    },
  };
}

const EMPTY = new Uint8Array(0);

function deniedStream(deny: (iface: string) => void): HostImports['byteStream'] {
  return {
    write() {
      deny('byte-stream');
      return 0;
    },
    read() {
      deny('byte-stream');
      return EMPTY;
    },
  };
}

// SPDX-License-Identifier: MIT
// Memory areas (WIT 0.1.1) on the host side, without a plugin: validating a memory-areas
// answer against the description, the region layout it gives, the shared-memory grant checks
// (own areas only, bounds, size), and the manifest capability.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { validateDescription, validateMemoryAreas } from '../../host/device/describe.js';
import { regionLayout } from '../../host/device/layout.js';
import { REGION_FLAG_MMAP } from '../../host/device/types.js';
import { PluginError } from '../../host/errors.js';
import type { HostImports, MemoryArea } from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import { applyGrants, type Grant, NO_GRANT } from '../../host/plugins/grants.js';
import { parseManifest } from '../../host/plugins/manifest.js';

const test = suite('memory areas: validation, layout, grants');

const DESC = validateDescription('m', {
  vendorId: 0x1234,
  deviceId: 0x5350,
  subsystemVendorId: 0,
  subsystemId: 0,
  classCode: 0,
  revision: 0,
  bars: [
    { index: 0, sizeBytes: 0x1000n, kind: 'mem32', prefetchable: false },
    { index: 2, sizeBytes: 0x4000n, kind: 'mem32', prefetchable: false },
    { index: 4, sizeBytes: 0x100n, kind: 'io', prefetchable: false },
  ],
  irqs: {
    intx: undefined,
    msiVectors: 0,
    msix: { vectors: 4, tableBar: 2, tableOffset: 0x3000, pbaBar: 2, pbaOffset: 0x3800 },
  },
  claimedRanges: [],
});

const area = (bar: number, offset: bigint, lengthBytes: bigint): MemoryArea => ({
  bar,
  offset,
  lengthBytes,
});

function invalid(raw: unknown): string {
  try {
    validateMemoryAreas('m', DESC, raw);
  } catch (err) {
    assert.instance(err, PluginError);
    assert.is((err as PluginError).kind, 'invalid');
    return (err as PluginError).message;
  }
  assert.unreachable('expected PluginError invalid');
  return '';
}

test('valid areas come back sorted and frozen', () => {
  const areas = validateMemoryAreas('m', DESC, [
    area(2, 0x1000n, 0x1000n),
    area(0, 0n, 0x1000n),
    area(2, 0n, 0x1000n),
  ]);
  assert.equal(
    areas.map((a) => [a.bar, a.offset]),
    [
      [0, 0n],
      [2, 0n],
      [2, 0x1000n],
    ],
  );
  assert.ok(Object.isFrozen(areas) && Object.isFrozen(areas[0]));
  assert.equal(validateMemoryAreas('m', DESC, []), []);
});

test('areas that are not whole pages inside a memory BAR, or that overlap, are refused', () => {
  assert.match(
    invalid([area(2, 0x800n, 0x1000n)]),
    /areas\[0\]\.offset: expected a multiple of 4096/,
  );
  assert.match(invalid([area(2, 0n, 0n)]), /lengthBytes: expected a non-zero multiple of 4096/);
  assert.match(invalid([area(2, 0n, 0x800n)]), /lengthBytes/);
  assert.match(invalid([area(0, 0n, 0x2000n)]), /an area inside BAR0/);
  assert.match(
    invalid([area(4, 0n, 0x1000n)]),
    /areas\[0\]\.bar: expected an implemented memory BAR/,
  );
  assert.match(invalid([area(1, 0n, 0x1000n)]), /areas\[0\]\.bar/);
  assert.match(
    invalid([area(2, 0n, 0x2000n), area(2, 0x1000n, 0x1000n)]),
    /areas\[1\]: expected an area clear of areas\[0\]/,
  );
  assert.match(invalid([area(2, 0x3000n, 0x1000n)]), /clear of MSI-X table/);
  assert.match(invalid(Array.from({ length: 17 }, () => area(2, 0n, 0x1000n))), /at most 16/);
  assert.match(invalid([{ bar: 2, offset: -1, lengthBytes: 0x1000n }]), /a u64/);
});

test('a BAR with areas is an MMAP region whose sparse areas are the memory areas', () => {
  const areas = validateMemoryAreas('m', DESC, [area(2, 0x1000n, 0x2000n)]);
  const regions = regionLayout(DESC, areas);
  assert.ok(regions[2]?.flags && regions[2].flags & REGION_FLAG_MMAP);
  assert.is(regions[2]?.memory, true);
  assert.equal(regions[2]?.mmapAreas, [{ offset: 0x1000, sizeBytes: 0x2000 }]);
  assert.is((regions[0]?.flags ?? 0) & REGION_FLAG_MMAP, 0);
  assert.is(regions[0]?.memory, undefined);
  assert.equal(regionLayout(DESC)[2]?.mmapAreas, []); // no areas: all trapped, as before
});

function memoryHost(grant: Partial<Grant>, areas: MemoryArea[], denied: Record<string, number>) {
  const calls: string[] = [];
  const raw = {
    sharedMemory: {
      read: (bar: number, offset: bigint, len: number) => {
        calls.push(`read ${bar}+${offset}:${len}`);
        return new Uint8Array(len);
      },
      write: (bar: number, offset: bigint, data: Uint8Array) => {
        calls.push(`write ${bar}+${offset}:${data.length}`);
      },
    },
  } as unknown as HostImports;
  const barSizes = new Map(DESC.bars.map((b) => [b.index, b.sizeBytes] as const));
  const host = applyGrants(raw, { ...NO_GRANT, irqVectors: [], regions: [], ...grant }, denied, {
    memoryLayout: () => ({ barSizes, areas }),
  });
  return { memory: host.sharedMemory, calls };
}

function refusedWith(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof WitError) return err.code;
    throw err;
  }
  return undefined;
}

test('shared-memory reaches only the plugin own areas, inside its BARs, in bounded copies', () => {
  const denied: Record<string, number> = {};
  const { memory, calls } = memoryHost({ sharedMemory: true }, [area(2, 0x1000n, 0x1000n)], denied);
  if (!memory) throw new Error('no shared-memory import');
  assert.is(
    refusedWith(() => memory.read(2, 0x1000n, 0x1000)),
    undefined,
  );
  assert.is(
    refusedWith(() => memory.write(2, 0x1ffcn, new Uint8Array(4))),
    undefined,
  );
  assert.is(
    refusedWith(() => memory.read(2, 0n, 4)),
    'not-granted',
  ); // in the BAR, no area
  assert.is(
    refusedWith(() => memory.read(2, 0x1ffen, 4)),
    'not-granted',
  ); // past the area
  assert.is(
    refusedWith(() => memory.read(0, 0n, 4)),
    'not-granted',
  ); // registers
  assert.is(
    refusedWith(() => memory.read(2, 0x4000n, 1)),
    'out-of-range',
  ); // past the BAR
  assert.is(
    refusedWith(() => memory.read(3, 0n, 1)),
    'out-of-range',
  ); // no such BAR
  assert.is(
    refusedWith(() => memory.write(2, 0x1000n, new Uint8Array((1 << 20) + 1))),
    'invalid-width',
  );
  assert.equal(calls, ['read 2+4096:4096', 'write 2+8188:4']); // refusals copied nothing
  assert.is(denied['shared-memory'], 6);
});

test('without the grant every shared-memory call is not-granted', () => {
  const denied: Record<string, number> = {};
  const { memory, calls } = memoryHost(
    { sharedMemory: false },
    [area(2, 0x1000n, 0x1000n)],
    denied,
  );
  assert.is(
    refusedWith(() => memory?.read(2, 0x1000n, 4)),
    'not-granted',
  );
  assert.equal(calls, []);
});

test('the manifest capability sharedMemory parses as a boolean and defaults to false', () => {
  const base = { name: 'm', version: '1.0.0', ids: [{ vendor: 1, device: 2 }] };
  assert.is(
    parseManifest({ ...base, capabilities: {} }, 'm.json').capabilities.sharedMemory,
    false,
  );
  const m = parseManifest({ ...base, capabilities: { sharedMemory: true } }, 'm.json');
  assert.is(m.capabilities.sharedMemory, true);
  assert.throws(
    () => parseManifest({ ...base, capabilities: { sharedMemory: 'yes' } }, 'm.json'),
    /capabilities\.sharedMemory/,
  );
});

test.run();

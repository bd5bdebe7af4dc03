// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WitError } from '../../host/plugins/engine.js';
import { applyGrants, DMA_MAX_TRANSFER_BYTES, type Grant } from '../../host/plugins/grants.js';
import { compiledPlugin, fakeHost, MiB } from './support.js';

const test = suite('grants');

const HOSTILE = {
  STATUS: 0x30n,
  IRQ_RAISE: 0x40n,
  DMA_READ: 0x44n,
  DMA_READ_LEN: 0x48n,
  LOG_FLOOD: 0x4cn,
  DMA_WRITE: 0x54n,
  IRQ_LOWER: 0x58n,
  FAILED: 0x100n,
};
/** WIT enum indices as the fixture reports them in its status register. */
const IRQ_NOT_GRANTED = 1n;
const DMA_NOT_GRANTED = 1n;
const DMA_TOO_LARGE = 3n;

function grant(overrides: Partial<Grant> = {}): Grant {
  return {
    irqVectors: [0],
    dma: [{ iova: 0x1000n, sizeBytes: 0x1000n, access: 'rw' }],
    regions: [],
    log: true,
    clock: true,
    byteStream: false,
    sharedMemory: false,
    ...overrides,
  };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.instance(err, WitError);
    return (err as WitError).code;
  }
}

async function hostileWith(g: Grant, nowMs = () => 0) {
  const raw = fakeHost();
  const denied: Record<string, number> = {};
  const plugin = await compiledPlugin('hostile');
  const dev = plugin.instantiate(applyGrants(raw, g, denied, { nowMs }), { memoryBytes: MiB });
  const act = (offset: bigint, value: bigint) => {
    dev.regionWrite(0, offset, 4, value);
    return dev.regionRead(0, HOSTILE.STATUS, 4);
  };
  return { raw, denied, dev, act };
}

test('an irq outside the granted vectors is refused with not-granted and counted', () => {
  const raw = fakeHost();
  const denied: Record<string, number> = {};
  const host = applyGrants(raw, grant(), denied);
  host.irq.raise(0);
  assert.is(
    code(() => host.irq.raise(3)),
    'not-granted',
  );
  assert.is(
    code(() => host.irq.lower(3)),
    'not-granted',
  );
  assert.is(host.irq.isMasked(3), true, 'an ungranted vector reads as masked');
  assert.equal(raw.raised, [0]);
  assert.equal(denied, { irq: 3 });
});

test('DMA must lie inside a granted window with the right access', () => {
  const raw = fakeHost();
  const denied: Record<string, number> = {};
  const readOnly = grant({ dma: [{ iova: 0x1000n, sizeBytes: 0x1000n, access: 'r' }] });
  const host = applyGrants(raw, readOnly, denied);
  assert.is(host.dma.read(0x1000n, 0x1000).length, 0x1000);
  assert.is(
    code(() => host.dma.read(0x1800n, 0x1000)),
    'not-granted',
    'runs past the window',
  );
  assert.is(
    code(() => host.dma.read(0x0n, 16)),
    'not-granted',
    'before the window',
  );
  assert.is(
    code(() => host.dma.write(0x1000n, new Uint8Array(4))),
    'not-granted',
    'read-only',
  );
  assert.equal(denied, { dma: 3 });
  assert.is(raw.ram[0x1000], 0, 'nothing written');
});

test('dma "none" refuses everything and "all" passes everything to the transport', () => {
  const denied: Record<string, number> = {};
  const none = applyGrants(fakeHost(), grant({ dma: 'none' }), denied);
  assert.is(
    code(() => none.dma.read(0n, 1)),
    'not-granted',
  );
  const all = applyGrants(fakeHost(), grant({ dma: 'all' }), denied);
  assert.is(all.dma.read(0n, 4).length, 4);
  assert.is(
    code(() => all.dma.read(0x100000n, 4)),
    'not-mapped',
    "the transport's own answer",
  );
  assert.equal(denied, { dma: 1 });
});

test("the engine's one-copy DMA paths are checked like read and write, before any allocation", () => {
  const raw = fakeHost();
  raw.ram.set([5, 6, 7, 8], 0x1000);
  const denied: Record<string, number> = {};
  const window = grant({ dma: [{ iova: 0x1000n, sizeBytes: 0x1000n, access: 'r' }] });
  const host = applyGrants(raw, window, denied);
  const memory = new ArrayBuffer(64);
  let allocs = 0;
  const target = {
    alloc() {
      allocs++;
      return 16;
    },
    memory: () => memory,
  };
  const { readInto, writeFrom } = host.dma;
  if (!readInto || !writeFrom) throw new Error('applyGrants gives both one-copy paths');
  assert.is(
    code(() => readInto(0x1ffcn, 8, target)),
    'not-granted',
  );
  assert.is(
    code(() => readInto(0x1000n, DMA_MAX_TRANSFER_BYTES + 1, target)),
    'too-large',
  );
  assert.is(
    code(() => writeFrom(0x1000n, memory, 0, 4)),
    'not-granted',
    'read-only',
  );
  assert.is(allocs, 0);
  assert.equal(denied, { dma: 2 });
  // a transport without readInto: read(), then one copy into the target
  assert.is(readInto(0x1000n, 4, target), 16);
  assert.equal([...new Uint8Array(memory, 16, 4)], [5, 6, 7, 8]);
  assert.is(allocs, 1);
});

test('a DMA transfer above 1 MiB is too-large whatever the grant', () => {
  const denied: Record<string, number> = {};
  const host = applyGrants(fakeHost(), grant({ dma: 'all' }), denied);
  assert.is(
    code(() => host.dma.read(0n, DMA_MAX_TRANSFER_BYTES + 1)),
    'too-large',
  );
  assert.is(
    code(() => host.dma.write(0n, new Uint8Array(DMA_MAX_TRANSFER_BYTES + 1))),
    'too-large',
  );
  assert.is(host.dma.read(0n, 16).length, 16);
});

test('log lines beyond the rate limit are dropped and counted as denied.log', () => {
  const raw = fakeHost();
  const denied: Record<string, number> = {};
  let now = 0;
  const host = applyGrants(raw, grant({ logLinesPerSecond: 5 }), denied, { nowMs: () => now });
  for (let i = 0; i < 20; i++) host.log.log('info', `line ${i}`);
  assert.is(raw.logs.length, 5);
  assert.is(denied.log, 15);
  now += 400; // 2 more lines' worth of tokens
  for (let i = 0; i < 5; i++) host.log.log('info', 'later');
  assert.is(raw.logs.length, 7);
  assert.is(denied.log, 18);
});

test('without the log, clock or byte-stream grants those calls are dropped and counted', () => {
  const raw = fakeHost();
  const denied: Record<string, number> = {};
  const host = applyGrants(raw, grant({ log: false, clock: false, byteStream: false }), denied);
  host.log.log('error', 'dropped');
  host.clock.setTimer(1, 10n);
  assert.is(host.clock.nowNs(), 0n);
  assert.is(host.byteStream.write(Uint8Array.of(1)), 0);
  assert.is(host.byteStream.read(8).length, 0);
  assert.equal(raw.logs, []);
  assert.equal(raw.timers.size, 0);
  assert.equal(denied, { log: 1, clock: 2, 'byte-stream': 2 });
});

test('region access (passthrough) must fall inside a granted range of that BAR', () => {
  const calls: string[] = [];
  const raw = {
    ...fakeHost(),
    region: {
      read: (bar: number, offset: bigint) => {
        calls.push(`r${bar}@${offset}`);
        return 7n;
      },
      write: (bar: number, offset: bigint) => void calls.push(`w${bar}@${offset}`),
    },
  };
  const denied: Record<string, number> = {};
  const host = applyGrants(
    raw,
    grant({ regions: [{ bar: 2, offset: 0x10n, lengthBytes: 0x10n }] }),
    denied,
  );
  const region = host.region;
  assert.ok(region);
  if (!region) return;
  assert.is(region.read(2, 0x18n, 8), 7n);
  assert.is(
    code(() => region.read(2, 0x1cn, 8)),
    'not-granted',
    'crosses the end',
  );
  assert.is(
    code(() => region.write(0, 0x10n, 4, 0n)),
    'not-granted',
    'other BAR',
  );
  assert.equal(calls, ['r2@24']);
  assert.equal(denied, { region: 2 });
});

test('a hostile plugin: out-of-grant irq and dma calls get err(not-granted), counted', async () => {
  const { raw, denied, act } = await hostileWith(grant());
  assert.is(act(HOSTILE.IRQ_RAISE, 5n), HOSTILE.FAILED | IRQ_NOT_GRANTED);
  assert.is(act(HOSTILE.IRQ_RAISE, 0n), 0n);
  assert.is(act(HOSTILE.IRQ_LOWER, 9n), HOSTILE.FAILED | IRQ_NOT_GRANTED);
  assert.is(act(HOSTILE.DMA_READ, 0x8000n), HOSTILE.FAILED | DMA_NOT_GRANTED);
  assert.is(act(HOSTILE.DMA_WRITE, 0x8000n), HOSTILE.FAILED | DMA_NOT_GRANTED);
  assert.is(act(HOSTILE.DMA_READ, 0x1000n), 0n);
  assert.equal(raw.raised, [0]);
  assert.equal(denied, { irq: 2, dma: 2 });
});

test('a hostile plugin: a huge DMA request gets err(too-large)', async () => {
  const { act } = await hostileWith(grant({ dma: 'all' }));
  assert.is(act(HOSTILE.DMA_READ_LEN, 64n * BigInt(MiB)), HOSTILE.FAILED | DMA_TOO_LARGE);
});

test('a hostile plugin: a log flood reaches the host only up to the rate limit', async () => {
  const { raw, denied, dev } = await hostileWith(grant({ logLinesPerSecond: 10 }));
  dev.regionWrite(0, HOSTILE.LOG_FLOOD, 4, 10000n);
  assert.is(raw.logs.length, 10);
  assert.is(denied.log, 9990);
  assert.is(dev.regionRead(0, 0n, 4), 0x686f7374n, 'the device keeps working');
});

test.run();

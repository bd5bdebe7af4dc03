// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IRQ_INTX, IRQ_MSI, IRQ_MSIX } from '../../host/device/types.js';
import { errnoName } from '../../host/errors.js';
import {
  createHarness,
  type Harness,
  recordTrace,
  replayTrace,
} from '../../host/harness/harness.js';
import { formatTrace, parseTrace, type TraceEvent } from '../../host/harness/trace.js';
import { VirtualClock } from '../../host/harness/virtual-clock.js';
import { createFakePlugin, REG } from '../helpers/fake-plugin.js';

const test = suite('harness');

/** A script exercising every traced kind of event. */
function script(h: Harness): void {
  h.write(0, REG.SCRATCH, 4, 0x1234);
  h.read(0, REG.SCRATCH, 4);
  h.setRam(0x2000, new Uint8Array([9, 8, 7, 6]));
  h.write(0, REG.DMA_IOVA, 8, 0x2000);
  h.write(0, REG.DMA_LEN, 4, 4);
  h.write(0, REG.DMA_IRQ, 4, 1);
  h.write(0, REG.DMA_CMD, 4, 1);
  h.read(0, REG.BUF, 4);
  h.write(0, REG.IRQ_LOWER, 4, 0);
  h.enableMsi();
  h.write(0, REG.TIMER_NS, 4, 5000);
  h.advance(5000);
  h.streamIn('hi');
  h.write(0, REG.STREAM_TX, 4, 0x21);
  h.read64(0, REG.SCRATCH);
}

test('the virtual clock fires due timers in order, ties in arming order', () => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  clock.setTimer('b', 20n, () => fired.push(`b@${clock.nowNs()}`));
  clock.setTimer('a', 10n, () => {
    fired.push(`a@${clock.nowNs()}`);
    clock.setTimer('c', 5n, () => fired.push(`c@${clock.nowNs()}`));
  });
  clock.setTimer('d', 20n, () => fired.push(`d@${clock.nowNs()}`));
  clock.setTimer('x', 30n, () => fired.push('x'));
  clock.cancel('x');
  assert.is(clock.advance(19), 2);
  assert.is(clock.advance(1), 2);
  assert.equal(fired, ['a@10', 'c@15', 'b@20', 'd@20']);
  assert.is(clock.nowNs(), 20n);
  assert.is(clock.nextDueNs(), undefined);
});

test('reads, writes, DMA and interrupts go through the harness', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  h.write(0, REG.SCRATCH, 4, 0xabcd);
  assert.is(h.read(0, REG.SCRATCH, 4), 0xabcd);
  h.setRam(0x100, new Uint8Array([1, 2, 3, 4]));
  h.write(0, REG.DMA_IOVA, 8, 0x100);
  h.write(0, REG.DMA_LEN, 4, 4);
  h.write(0, REG.DMA_CMD, 4, 1);
  h.write(0, REG.DMA_IOVA, 8, 0x200);
  h.write(0, REG.DMA_CMD, 4, 2);
  assert.equal([...h.getRam(0x200, 4)], [1, 2, 3, 4]);
  h.write(0, REG.IRQ_RAISE, 4, 0);
  h.advance(7);
  h.write(0, REG.IRQ_LOWER, 4, 0);
  h.enableMsi(4);
  h.write(0, REG.IRQ_RAISE, 4, 3);
  assert.equal(h.takeIrqs(), [
    { index: IRQ_INTX, sub: 0, atNs: 0n },
    { index: IRQ_MSI, sub: 3, atNs: 7n },
  ]);
  assert.equal(h.irqs, []);
});

test('DMA outside guest RAM is refused as not-mapped', () => {
  const h = createHarness({ plugin: createFakePlugin(), ramBytes: 4096 });
  h.write(0, REG.DMA_IOVA, 8, 4094);
  h.write(0, REG.DMA_LEN, 4, 4);
  h.write(0, REG.DMA_CMD, 4, 2);
  assert.is(h.read(0, REG.LAST_ERR, 4), 1, 'not-mapped');
  assert.throws(() => h.setRam(4095, new Uint8Array(2)));
});

test('enableMsix unmasks the table and routes vectors to MSI-X', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  h.enableMsix();
  h.write(0, REG.IRQ_RAISE, 4, 2);
  assert.equal(
    h.takeIrqs().map((i) => [i.index, i.sub]),
    [[IRQ_MSIX, 2]],
  );
});

test('the byte stream collects output and feeds input', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  h.streamIn('abc');
  assert.is(h.read(0, REG.STREAM_TX, 4), 3);
  h.write(0, REG.STREAM_TX, 4, 0x4f);
  h.write(0, REG.STREAM_TX, 4, 0x4b);
  assert.is(new TextDecoder().decode(h.streamOut), 'OK');
});

test('a refused read is traced with its errno name and rethrown', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  assert.throws(() => h.read(0, REG.UNSUPPORTED, 4));
  assert.equal(h.trace.at(-1), {
    op: 'read',
    region: 0,
    offset: REG.UNSUPPORTED,
    width: 4,
    value: `!${errnoName(95)}`, // ENOTSUP and EOPNOTSUPP share 95 on Linux
  });
});

test('a recorded trace survives formatting and replays without mismatches', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  const events = recordTrace(h, script);
  const ops = new Set(events.map((e) => e.op));
  for (const op of [
    'read',
    'write',
    'advance',
    'irq',
    'dma-read',
    'ram-set',
    'stream-in',
    'stream-out',
  ]) {
    assert.ok(ops.has(op as TraceEvent['op']), `trace has ${op}`);
  }
  const text = formatTrace(events);
  assert.equal(parseTrace(text), events);
  const result = replayTrace(createFakePlugin(), parseTrace(text));
  assert.equal(result.mismatches, []);
  assert.ok(result.ok);
});

test('replay detects a changed read value at its index', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  const events = recordTrace(h, script);
  const index = events.findIndex((e) => e.op === 'read' && e.offset === REG.BUF);
  const edited = events.map((e, i) => (i === index ? { ...e, value: '0x1' } : e));
  const result = replayTrace(createFakePlugin(), edited);
  assert.not.ok(result.ok);
  assert.is(result.mismatches.length, 1);
  assert.is(result.mismatches[0]?.index, index);
  assert.equal(result.mismatches[0]?.actual, { ...edited[index], value: '0x6070809' });
});

test('replay detects a missing interrupt without blaming what follows', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  const events = recordTrace(h, script);
  const irq = events.findIndex((e) => e.op === 'irq');
  const edited: TraceEvent[] = [
    ...events.slice(0, irq + 1),
    { op: 'irq', index: IRQ_MSIX, sub: 1 },
    ...events.slice(irq + 1),
  ];
  const result = replayTrace(createFakePlugin(), edited);
  assert.equal(result.mismatches, [
    { index: irq + 1, expected: { op: 'irq', index: IRQ_MSIX, sub: 1 }, actual: undefined },
  ]);
});

test('replay against a different plugin reports the diverging reads', () => {
  const h = createHarness({ plugin: createFakePlugin() });
  const events = recordTrace(h, (x) => {
    x.read(0, REG.VERSION, 4);
    x.read(0, REG.SCRATCH, 4);
  });
  const result = replayTrace(createFakePlugin({ version: 2 }), events);
  assert.equal(
    result.mismatches.map((m) => m.index),
    [0],
  );
});

test('parseTrace skips comments and rejects unknown ops with the line number', () => {
  const text = '# golden\n\n{"op":"advance","ns":5}\n';
  assert.equal(parseTrace(text), [{ op: 'advance', ns: 5 }]);
  assert.throws(() => parseTrace('{"op":"advance","ns":5}\n{"op":"poke"}'), /line 2/);
  assert.throws(() => parseTrace('{"op":"read","region":0}'), /read\.offset/);
});

test('a fenced plugin under the harness restarts when virtual time passes', () => {
  const h = createHarness({ plugin: createFakePlugin(), restartBackoffMs: [1] });
  h.write(0, REG.TRAP, 4, 1);
  assert.is(h.read(0, REG.SCRATCH, 4), 0xffff_ffff);
  h.advance(1_000_000);
  assert.is(h.read(0, REG.SCRATCH, 4), 0);
  assert.equal([h.device.stats().fences, h.device.stats().restarts], [1, 1]);
});

test.run();

// SPDX-License-Identifier: MIT
// The edu plugin (plugins/c/edu) through the harness: every register behaviour of its README's
// map, on virtual time, with the device model around it (config space, INTx/MSI routing, DMA
// to the harness's guest RAM at IOVA 0).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PCI_STATUS, PCI_STATUS_INTERRUPT } from '../../host/device/config-space.js';
import { IRQ_INTX, IRQ_MSI } from '../../host/device/types.js';
import { createHarness, type Harness } from '../../host/harness/harness.js';
import { type HostImports, WitError } from '../../host/plugins/engine.js';
import { thrown } from '../helpers/thrown.js';
import { compiledPlugin, MiB } from './support.js';

const test = suite('edu plugin through the harness');

/** BAR0 offsets (plugins/c/edu/README.md "Register map"). */
const R = {
  IDENT: 0x00,
  LIVENESS: 0x04,
  FACT: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_CNT: 0x90,
  DMA_CMD: 0x98,
} as const;
const STATUS_COMPUTING = 0x1;
const STATUS_IRQ_FACT = 0x80;
const IRQ_FACT = 0x1;
const IRQ_DMA = 0x100;
const CMD_RUN = 0x1;
const CMD_TO_RAM = 0x2;
const CMD_IRQ = 0x4;
const DMA_BUF = 0x40000;
const DMA_BUF_BYTES = 4096;
/** both completions come from a 10 us timer (README "Completion by timer") */
const WORK_NS = 10_000;

async function edu(): Promise<Harness> {
  return createHarness({ plugin: await compiledPlugin('edu'), name: 'edu' });
}

const r32 = (h: Harness, offset: number) => h.read(0, offset, 4);
const w32 = (h: Harness, offset: number, value: number) => h.write(0, offset, 4, value);
const irqs = (h: Harness) => h.takeIrqs().map((i) => [i.index, i.sub]);
const intxAsserted = (h: Harness) => (h.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) !== 0;
const warnings = (h: Harness) => h.logs.filter((l) => l.level === 'warn').map((l) => l.message);

function dma(h: Harness, src: number | bigint, dst: number | bigint, count: number, cmd: number) {
  h.write(0, R.DMA_SRC, 8, BigInt(src));
  h.write(0, R.DMA_DST, 8, BigInt(dst));
  h.write(0, R.DMA_CNT, 8, BigInt(count));
  w32(h, R.DMA_CMD, cmd);
}

/** Host imports that do nothing, for calls straight into an instance. */
function nullHost(): HostImports {
  return {
    irq: { raise() {}, lower() {}, isMasked: () => false },
    dma: { read: () => new Uint8Array(0), write() {} },
    log: { log() {} },
    clock: { nowNs: () => 0n, setTimer() {}, cancelTimer() {} },
    byteStream: { write: () => 0, read: () => new Uint8Array(0) },
  };
}

test('ident reads 0x010000ed and liveness reads back the complement of what was written', async () => {
  const h = await edu();
  assert.is(r32(h, R.IDENT), 0x010000ed);
  w32(h, R.IDENT, 0x12345678);
  assert.is(r32(h, R.IDENT), 0x010000ed, 'ident is read-only');
  assert.is(r32(h, R.LIVENESS), 0, 'power-on value');
  w32(h, R.LIVENESS, 0x12345678);
  assert.is(r32(h, R.LIVENESS), 0xedcba987);
  w32(h, R.LIVENESS, 0);
  assert.is(r32(h, R.LIVENESS), 0xffffffff);
  h.close();
});

test('below 0x80 only 4-byte accesses count: 1/2-byte reads are all-ones, writes dropped', async () => {
  const h = await edu();
  w32(h, R.LIVENESS, 0xffff0000);
  assert.is(h.read(0, R.LIVENESS, 2), 0xffff, 'a 2-byte read of a 0x0000ffff register');
  assert.is(h.read(0, R.IDENT, 1), 0xff);
  h.write(0, R.LIVENESS, 2, 0x1234);
  h.write(0, R.LIVENESS, 1, 0x55);
  assert.is(r32(h, R.LIVENESS), 0x0000ffff, '1/2-byte writes changed nothing');
  assert.is(h.read64(0, R.DMA_SRC), 0n, '8-byte access from 0x80 up is valid');
  h.close();
});

test('unlisted offsets read all-ones and ignore writes', async () => {
  const h = await edu();
  for (const offset of [0x0c, 0x28, 0x68, 0xa0, 0x1000, 0xffffc]) {
    w32(h, offset, 0);
    assert.is(r32(h, offset), 0xffffffff, `offset 0x${offset.toString(16)}`);
  }
  h.close();
});

test('misaligned and out-of-BAR accesses are invalid-width / out-of-range, not faults', async () => {
  const inst = (await compiledPlugin('edu')).instantiate(nullHost(), { memoryBytes: MiB });
  const misaligned = thrown(() => inst.regionRead(0, 0x82n, 4));
  assert.instance(misaligned, WitError);
  assert.is((misaligned as WitError).code, 'invalid-width');
  assert.is((thrown(() => inst.regionWrite(0, 0x81n, 8, 0n)) as WitError).code, 'invalid-width');
  assert.is((thrown(() => inst.regionRead(0, BigInt(MiB), 4)) as WitError).code, 'out-of-range');
  assert.is((thrown(() => inst.regionRead(1, 0n, 4)) as WitError).code, 'out-of-range');
  assert.is(inst.regionRead(0, 0n, 4), 0x010000edn, 'the instance keeps working');
  inst.dispose();
  // Through the model a misaligned access is split into aligned 2-byte pieces (all-ones from
  // 0x80 up), and one outside BAR0 is refused before the plugin sees it.
  const h = await edu();
  assert.is(h.read(0, 0x82, 4), 0xffffffff);
  assert.instance(
    thrown(() => h.read(0, MiB, 4)),
    RangeError,
  );
  assert.is(h.device.stats().fenced, false);
  h.close();
});

test('factorial sets the busy bit, reads n until done, then n! after the 10 us timer', async () => {
  const h = await edu();
  w32(h, R.FACT, 10);
  assert.is(r32(h, R.STATUS) & STATUS_COMPUTING, STATUS_COMPUTING);
  assert.is(r32(h, R.FACT), 10, 'reads give n until done');
  h.advance(WORK_NS - 1);
  assert.is(r32(h, R.STATUS) & STATUS_COMPUTING, STATUS_COMPUTING, 'still computing at 9.999 us');
  h.advance(1);
  assert.is(r32(h, R.STATUS) & STATUS_COMPUTING, 0);
  assert.is(r32(h, R.FACT), 3628800);
  assert.equal(irqs(h), [], 'no interrupt without status bit 7');
  assert.is(r32(h, R.IRQ_STATUS), 0);
  h.close();
});

test('factorial writes while computing are ignored, and the result wraps at 32 bits', async () => {
  const h = await edu();
  w32(h, R.FACT, 13);
  w32(h, R.FACT, 3);
  assert.is(r32(h, R.FACT), 13);
  h.advance(WORK_NS);
  assert.is(r32(h, R.FACT), 6227020800 % 2 ** 32, '13! mod 2^32');
  w32(h, R.FACT, 0);
  h.advance(WORK_NS);
  assert.is(r32(h, R.FACT), 1, '0! = 1');
  h.close();
});

test('status bit 0 is read-only and bit 7 raises interrupt 0x1 when the factorial completes', async () => {
  const h = await edu();
  w32(h, R.STATUS, 0xffffffff);
  assert.is(r32(h, R.STATUS), STATUS_IRQ_FACT, 'only bit 7 is writable');
  w32(h, R.FACT, 4);
  assert.is(r32(h, R.STATUS), STATUS_IRQ_FACT | STATUS_COMPUTING);
  assert.equal(irqs(h), []);
  h.advance(WORK_NS);
  assert.equal(irqs(h), [[IRQ_INTX, 0]], 'completion interrupt on INTx');
  assert.is(r32(h, R.FACT), 24);
  assert.is(r32(h, R.IRQ_STATUS), IRQ_FACT);
  assert.ok(intxAsserted(h));
  w32(h, R.IRQ_ACK, IRQ_FACT);
  assert.not.ok(intxAsserted(h));
  assert.is(r32(h, R.IRQ_STATUS), 0);
  h.close();
});

test('irq raise ORs into irq status; INTx stays asserted until every cause is acked', async () => {
  const h = await edu();
  assert.not.ok(intxAsserted(h));
  w32(h, R.IRQ_RAISE, 0x10);
  assert.equal(irqs(h), [[IRQ_INTX, 0]]);
  assert.ok(intxAsserted(h), 'PCI_STATUS_INTERRUPT reflects the line');
  w32(h, R.IRQ_RAISE, 0x3000);
  assert.equal(irqs(h), [], 'a level already asserted is not signalled again');
  assert.is(r32(h, R.IRQ_STATUS), 0x3010);
  w32(h, R.IRQ_STATUS, 0);
  assert.is(r32(h, R.IRQ_STATUS), 0x3010, 'irq status is read-only');
  assert.is(r32(h, R.IRQ_RAISE), 0xffffffff, 'irq raise is write-only');
  w32(h, R.IRQ_ACK, 0x1010);
  assert.is(r32(h, R.IRQ_STATUS), 0x2000);
  assert.ok(intxAsserted(h), 'one cause left: still asserted');
  w32(h, R.IRQ_ACK, 0x2000);
  assert.is(r32(h, R.IRQ_STATUS), 0);
  assert.not.ok(intxAsserted(h));
  w32(h, R.IRQ_RAISE, 0x1);
  assert.equal(irqs(h), [[IRQ_INTX, 0]], 'asserting again signals again');
  h.close();
});

test('DMA RAM to edu and back moves bytes through the 4 KiB buffer, with interrupt 0x100', async () => {
  const h = await edu();
  const data = new Uint8Array(64).map((_, i) => (i * 7 + 3) & 0xff);
  h.setRam(0x2000, data);
  dma(h, 0x2000, DMA_BUF + 0x100, data.length, CMD_RUN | CMD_IRQ);
  assert.is(r32(h, R.DMA_CMD) & CMD_RUN, CMD_RUN, 'running');
  h.advance(WORK_NS);
  assert.is(r32(h, R.DMA_CMD) & CMD_RUN, 0, 'bit 0 clears when done');
  assert.equal(irqs(h), [[IRQ_INTX, 0]]);
  assert.is(r32(h, R.IRQ_STATUS), IRQ_DMA);
  w32(h, R.IRQ_ACK, IRQ_DMA);
  // edu to RAM: the buffer's bytes at 0x100 land at IOVA 0x9000, without an interrupt.
  dma(h, DMA_BUF + 0x100, 0x9000, data.length, CMD_RUN | CMD_TO_RAM);
  h.advance(WORK_NS);
  assert.equal([...h.getRam(0x9000, data.length)], [...data]);
  assert.equal(irqs(h), [], 'no interrupt without bit 2');
  const transfers = h.trace.filter((e) => e.op === 'dma-read' || e.op === 'dma-write');
  assert.equal(transfers, [
    { op: 'dma-read', iova: '0x2000', len: 64 },
    { op: 'dma-write', iova: '0x9000', len: 64 },
  ]);
  assert.equal(warnings(h), []);
  h.close();
});

test('the whole 4 KiB buffer transfers; DMA registers are frozen and commands ignored while running', async () => {
  const h = await edu();
  const data = new Uint8Array(DMA_BUF_BYTES).map((_, i) => i & 0xff);
  h.setRam(0x10000, data);
  dma(h, 0x10000, DMA_BUF, DMA_BUF_BYTES, CMD_RUN);
  h.write(0, R.DMA_SRC, 8, 0x5000n);
  h.write(0, R.DMA_CNT, 8, 1n);
  w32(h, R.DMA_CMD, CMD_RUN | CMD_TO_RAM | CMD_IRQ);
  assert.is(h.read64(0, R.DMA_SRC), 0x10000n, 'source frozen');
  assert.is(h.read64(0, R.DMA_CNT), BigInt(DMA_BUF_BYTES), 'count frozen');
  assert.is(r32(h, R.DMA_CMD), CMD_RUN, 'a command while running is ignored');
  h.advance(WORK_NS);
  assert.equal(irqs(h), []);
  w32(h, R.DMA_CMD, CMD_TO_RAM | CMD_IRQ);
  assert.is(r32(h, R.DMA_CMD), 0, 'a command without bit 0 is ignored');
  dma(h, DMA_BUF, 0x20000, DMA_BUF_BYTES, CMD_RUN | CMD_TO_RAM);
  h.advance(WORK_NS);
  assert.equal([...h.getRam(0x20000, DMA_BUF_BYTES)], [...data]);
  h.close();
});

test('DMA outside the edu buffer is refused, logged, and still completes with its interrupt', async () => {
  const h = await edu();
  const cases: Array<[string, number, number, number]> = [
    ['below the buffer', 0x1000, DMA_BUF - 1, 2],
    ['past its end', 0x1000, DMA_BUF + DMA_BUF_BYTES - 8, 16],
    ['edu to RAM from outside', DMA_BUF + DMA_BUF_BYTES, 0x1000, 1],
    ['a count that wraps', 0x1000, DMA_BUF, -1],
  ];
  for (const [what, src, dst, count] of cases) {
    const toRam = what.startsWith('edu to RAM');
    h.write(0, R.DMA_SRC, 8, BigInt(src));
    h.write(0, R.DMA_DST, 8, BigInt(dst));
    h.write(0, R.DMA_CNT, 8, BigInt.asUintN(64, BigInt(count)));
    w32(h, R.DMA_CMD, CMD_RUN | CMD_IRQ | (toRam ? CMD_TO_RAM : 0));
    h.advance(WORK_NS);
    assert.is(r32(h, R.DMA_CMD) & CMD_RUN, 0, `${what}: completes`);
    assert.equal(irqs(h), [[IRQ_INTX, 0]], `${what}: interrupt`);
    w32(h, R.IRQ_ACK, IRQ_DMA);
  }
  assert.not.ok(
    h.trace.some((e) => e.op === 'dma-read' || e.op === 'dma-write'),
    'nothing transferred',
  );
  assert.is(warnings(h).length, cases.length);
  assert.match(warnings(h)[0] ?? '', /DMA out of the edu buffer, refused/);
  assert.is(h.device.stats().fenced, false);
  h.close();
});

test('a DMA the host refuses (IOVA outside guest RAM) is logged and completes', async () => {
  const h = await edu();
  dma(h, 0x200000, DMA_BUF, 16, CMD_RUN | CMD_IRQ);
  h.advance(WORK_NS);
  assert.is(r32(h, R.DMA_CMD) & CMD_RUN, 0);
  assert.equal(irqs(h), [[IRQ_INTX, 0]]);
  assert.match(warnings(h)[0] ?? '', /DMA failed: iova, error 0x200000 /);
  h.close();
});

test('the guest-side DMA address is masked to 28 bits', async () => {
  const h = await edu();
  h.setRam(0x3000, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  dma(h, 0xf_1000_3000n, DMA_BUF, 4, CMD_RUN);
  h.advance(WORK_NS);
  assert.is(h.read64(0, R.DMA_SRC), 0xf_1000_3000n, 'the register keeps what was written');
  dma(h, DMA_BUF, 0xf000_4000n, 4, CMD_RUN | CMD_TO_RAM);
  h.advance(WORK_NS);
  assert.equal([...h.getRam(0x4000, 4)], [0xde, 0xad, 0xbe, 0xef]);
  assert.equal(
    h.trace.filter((e) => e.op === 'dma-read' || e.op === 'dma-write'),
    [
      { op: 'dma-read', iova: '0x3000', len: 4 },
      { op: 'dma-write', iova: '0x4000', len: 4 },
    ],
  );
  h.close();
});

test('with MSI enabled completion interrupts go as MSI vector 0 and INTx stays deasserted', async () => {
  const h = await edu();
  h.enableMsi();
  w32(h, R.STATUS, STATUS_IRQ_FACT);
  w32(h, R.FACT, 5);
  h.advance(WORK_NS);
  assert.equal(irqs(h), [[IRQ_MSI, 0]]);
  assert.not.ok(intxAsserted(h));
  w32(h, R.IRQ_RAISE, 0x40);
  assert.equal(irqs(h), [[IRQ_MSI, 0]], 'MSI is an edge: every raise is a message');
  h.close();
});

test('reset returns every register to power-on state and cancels work in progress', async () => {
  const h = await edu();
  w32(h, R.LIVENESS, 1);
  w32(h, R.STATUS, STATUS_IRQ_FACT);
  w32(h, R.IRQ_RAISE, 0x8);
  w32(h, R.FACT, 6);
  dma(h, 0x1000, DMA_BUF, 16, CMD_RUN | CMD_IRQ);
  irqs(h);
  h.reset();
  assert.not.ok(intxAsserted(h), 'the host lowered the line');
  assert.equal(
    [R.LIVENESS, R.FACT, R.STATUS, R.IRQ_STATUS, R.DMA_CMD].map((o) => r32(h, o)),
    [0, 0, 0, 0, 0],
  );
  assert.equal(
    [R.DMA_SRC, R.DMA_DST, R.DMA_CNT].map((o) => h.read64(0, o)),
    [0n, 0n, 0n],
  );
  h.advance(10 * WORK_NS);
  assert.equal(irqs(h), [], 'the cancelled factorial and DMA never complete');
  assert.not.ok(h.trace.some((e) => e.op === 'dma-read'));
  // The buffer is cleared too: edu to RAM after reset writes zeros.
  h.setRam(0x6000, new Uint8Array(4).fill(0xaa));
  dma(h, DMA_BUF, 0x6000, 4, CMD_RUN | CMD_TO_RAM);
  h.advance(WORK_NS);
  assert.equal([...h.getRam(0x6000, 4)], [0, 0, 0, 0]);
  h.close();
});

test('save-state and load-state carry registers, buffer and pending work across a reload', async () => {
  const h = await edu();
  const plugin = await compiledPlugin('edu');
  h.setRam(0x1000, new Uint8Array([1, 2, 3, 4]));
  dma(h, 0x1000, DMA_BUF + 8, 4, CMD_RUN);
  h.advance(WORK_NS);
  w32(h, R.LIVENESS, 0xf0f0f0f0);
  w32(h, R.IRQ_RAISE, 0x20);
  w32(h, R.STATUS, STATUS_IRQ_FACT);
  w32(h, R.FACT, 7);
  irqs(h);
  h.device.reload(plugin);
  assert.is(h.device.stats().reloads, 1);
  assert.is(r32(h, R.LIVENESS), 0x0f0f0f0f);
  assert.is(r32(h, R.IRQ_STATUS), 0x20);
  assert.is(r32(h, R.STATUS), STATUS_IRQ_FACT | STATUS_COMPUTING);
  h.advance(WORK_NS);
  assert.is(r32(h, R.FACT), 5040, 'load-state re-armed the factorial timer');
  assert.is(r32(h, R.IRQ_STATUS), 0x21);
  dma(h, DMA_BUF + 8, 0x7000, 4, CMD_RUN | CMD_TO_RAM);
  h.advance(WORK_NS);
  assert.equal([...h.getRam(0x7000, 4)], [1, 2, 3, 4], 'the DMA buffer survived');
  h.close();
});

test('load-state refuses a blob of the wrong size or magic and keeps the old state', async () => {
  const inst = (await compiledPlugin('edu')).instantiate(nullHost(), { memoryBytes: MiB });
  inst.regionWrite(0, BigInt(R.LIVENESS), 4, 0x22222222n);
  const state = inst.saveState();
  assert.is(state.length, 4156, 'README: 4156 bytes');
  assert.equal([...state.subarray(0, 4)], [...new TextEncoder().encode('EDU1')]);
  const badMagic = state.slice();
  badMagic[0] = 0x58;
  inst.regionWrite(0, BigInt(R.LIVENESS), 4, 0x33333333n);
  for (const bad of [state.subarray(0, 100), badMagic]) {
    assert.instance(
      thrown(() => inst.loadState(bad)),
      WitError,
    );
  }
  assert.is(inst.regionRead(0, BigInt(R.LIVENESS), 4), 0xccccccccn, 'state unchanged');
  inst.loadState(state);
  assert.is(inst.regionRead(0, BigInt(R.LIVENESS), 4), 0xddddddddn);
  inst.dispose();
});

test.run();

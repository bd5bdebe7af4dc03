// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createPluginDevice,
  type IrqSnapshot,
  type PluginDeviceOptions,
} from '../../host/device/model.js';
import { IRQ_INTX, IRQ_MSI, IRQ_MSIX, REGION_CONFIG } from '../../host/device/types.js';
import { PluginError } from '../../host/errors.js';
import { GRANT_ALL } from '../../host/harness/harness.js';
import { VirtualClock } from '../../host/harness/virtual-clock.js';
import { WitError } from '../../host/plugins/engine.js';
import {
  createFakePlugin,
  ERR_CODES,
  type FakePlugin,
  fakeDescription,
  REG,
} from '../helpers/fake-plugin.js';

const isRangeError = (e: unknown): boolean => e instanceof RangeError;

const test = suite('device-model');

const MS = 1_000_000;

function setup(extra: Partial<PluginDeviceOptions> = {}, plugin: FakePlugin = createFakePlugin()) {
  const clock = new VirtualClock();
  const irqs: string[] = [];
  const output: number[] = [];
  const ram = new Uint8Array(4096);
  const device = createPluginDevice({
    name: 'fake',
    plugin,
    grant: GRANT_ALL,
    clock,
    restartBackoffMs: [0, 100, 1000],
    quietPeriodMs: 50,
    ...extra,
  });
  const io = {
    irq: {
      trigger(index: number, sub: number) {
        irqs.push(`${['intx', 'msi', 'msix'][index]}:${sub}`);
        return true;
      },
    },
    dma: {
      read(iova: bigint, len: number) {
        if (iova + BigInt(len) > 4096n) throw new WitError('not-mapped');
        return ram.slice(Number(iova), Number(iova) + len);
      },
      write(iova: bigint, data: Uint8Array) {
        if (iova + BigInt(data.length) > 4096n) throw new WitError('not-mapped');
        ram.set(data, Number(iova));
      },
    },
    stream: { onDeviceOutput: (data: Uint8Array) => output.push(...data) },
  };
  const rd = (region: number, offset: number, width: number): bigint => {
    const out = new Uint8Array(width);
    device.read(region, offset, out);
    let v = 0n;
    for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(out[i] ?? 0);
    return v;
  };
  const wr = (region: number, offset: number, width: number, value: number | bigint): void => {
    const data = new Uint8Array(width);
    for (let i = 0; i < width; i++) data[i] = Number((BigInt(value) >> BigInt(8 * i)) & 0xffn);
    device.write(region, offset, data);
  };
  const inst = (n = -1) => {
    const i = plugin.instances.at(n);
    if (!i) throw new Error('no instance');
    return i;
  };
  const cfg = device.config;
  return { device, plugin, clock, irqs, output, ram, io, rd, wr, inst, cfg };
}

test('regions and irqs follow describe()', () => {
  const { device } = setup();
  assert.equal(
    device.regions.map((r) => [r.index, r.sizeBytes, r.flags, r.mmapAreas.length]),
    [
      [0, 4096, 3, 0],
      [1, 0, 0, 0],
      [2, 16384, 3, 0],
      [3, 0, 0, 0],
      [4, 32, 3, 0],
      [5, 0, 0, 0],
      [6, 0, 0, 0],
      [7, 256, 3, 0],
      [8, 0, 0, 0],
    ],
  );
  assert.equal(
    device.irqs.map((i) => [i.index, i.count, i.flags]),
    [
      [0, 1, 0x7],
      [1, 4, 0xb],
      [2, 4, 0xb],
      [3, 0, 0],
      [4, 0, 0],
    ],
  );
  assert.ok(device.resetSupported);
});

test('accesses are split into naturally aligned plugin calls of at most 8 bytes', () => {
  const { rd, wr, inst } = setup();
  wr(0, REG.SCRATCH, 8, 0x1122_3344_5566_7788n);
  assert.is(rd(0, REG.SCRATCH, 8), 0x1122_3344_5566_7788n);
  assert.is(inst().calls.regionRead, 1);
  const { device, inst: inst2 } = setup();
  const buf = new Uint8Array(19);
  device.write(
    0,
    REG.BUF + 1,
    Uint8Array.from({ length: 19 }, (_, i) => i + 1),
  );
  // 0x101: 1 + 2 + 4 + 8 + 4 bytes
  assert.is(inst2().calls.regionWrite, 5);
  device.read(0, REG.BUF + 1, buf);
  assert.equal(
    [...buf],
    Array.from({ length: 19 }, (_, i) => i + 1),
  );
});

test('accesses outside a region or to an absent region are RangeErrors', () => {
  const { device } = setup();
  assert.throws(() => device.read(0, 4095, new Uint8Array(2)), isRangeError);
  assert.throws(() => device.read(1, 0, new Uint8Array(4)), isRangeError);
  assert.throws(() => device.write(9, 0, new Uint8Array(1)), isRangeError);
  assert.throws(() => device.read(REGION_CONFIG, 254, new Uint8Array(4)), isRangeError);
});

test('the config region is the emulated space, with device offsets from the plugin', () => {
  const { rd, wr, inst } = setup();
  assert.is(rd(REGION_CONFIG, 0, 4), 0x10f0_1af4n);
  wr(REGION_CONFIG, REG.CONFIG_REG, 4, 0xdead_beef);
  assert.is(rd(REGION_CONFIG, REG.CONFIG_REG, 4), 0xdead_beefn);
  assert.is(inst().calls.configWrite, 1);
  // an 8-byte config read becomes two dword accesses
  assert.is(rd(REGION_CONFIG, 0, 8), (0x0010_0000n << 32n) | 0x10f0_1af4n, 'status:command:ids');
});

test('I/O and memory decode do not gate BAR access', () => {
  const { rd, cfg } = setup();
  assert.is(cfg.command & 0x3, 0);
  assert.is(rd(4, 0x10, 4), 0x10n);
});

test('INTx: raise sets the status bit and signals, lower clears it', () => {
  const { device, io, wr, irqs, cfg } = setup();
  device.attach(io);
  wr(0, REG.IRQ_RAISE, 4, 0);
  assert.equal(irqs, ['intx:0']);
  assert.is(cfg.read(0x06, 2) & 0x08, 0x08);
  wr(0, REG.IRQ_RAISE, 4, 0);
  assert.equal(irqs, ['intx:0'], 'a level already asserted is not re-signalled');
  wr(0, REG.IRQ_LOWER, 4, 0);
  assert.is(cfg.read(0x06, 2) & 0x08, 0);
});

test('INTx disable holds the signal; clearing it while asserted re-signals', () => {
  const { device, wr, irqs, cfg, inst, io } = setup();
  device.attach(io);
  wr(REGION_CONFIG, 0x04, 2, 0x0400);
  wr(0, REG.IRQ_RAISE, 4, 0);
  assert.equal(irqs, []);
  assert.is(cfg.read(0x06, 2) & 0x08, 0x08, 'status shows the line even when disabled');
  assert.ok(inst().host.irq.isMasked(0));
  wr(REGION_CONFIG, 0x04, 2, 0x0000);
  assert.equal(irqs, ['intx:0']);
  assert.not.ok(inst().host.irq.isMasked(0));
});

test('MSI: delivered per enabled vector, dropped above the enabled count', () => {
  const { device, io, wr, irqs, cfg } = setup();
  device.attach(io);
  const msi = cfg.msiOffset ?? 0;
  wr(REGION_CONFIG, msi + 2, 2, 0x0011); // enable, MME=1: 2 vectors
  wr(0, REG.IRQ_RAISE, 4, 1);
  wr(0, REG.IRQ_RAISE, 4, 3);
  assert.equal(irqs, ['msi:1']);
  assert.is(device.stats().irqsDropped, 1);
});

test('MSI: a masked vector goes pending and is sent when unmasked', () => {
  const { device, io, wr, rd, irqs, cfg } = setup();
  device.attach(io);
  const msi = cfg.msiOffset ?? 0;
  wr(REGION_CONFIG, msi + 2, 2, 0x0021);
  wr(REGION_CONFIG, msi + 16, 4, 0x4);
  wr(0, REG.IRQ_RAISE, 4, 2);
  assert.equal(irqs, []);
  assert.is(rd(REGION_CONFIG, msi + 20, 4), 0x4n);
  wr(REGION_CONFIG, msi + 16, 4, 0);
  assert.equal(irqs, ['msi:2']);
  assert.is(rd(REGION_CONFIG, msi + 20, 4), 0n);
});

test('enabling MSI deasserts INTx', () => {
  const { device, io, wr, cfg } = setup();
  device.attach(io);
  wr(0, REG.IRQ_RAISE, 4, 0);
  wr(REGION_CONFIG, (cfg.msiOffset ?? 0) + 2, 2, 0x0001);
  assert.is(cfg.read(0x06, 2) & 0x08, 0);
});

test('MSI-X table and PBA are emulated and never reach the plugin', () => {
  const { rd, wr, inst } = setup();
  const before = { ...inst().calls };
  assert.is(rd(2, 12, 4), 1n, 'vector control is masked at power-on');
  wr(2, 16, 8, 0x0000_0000_fee0_1000n);
  assert.is(rd(2, 16, 8), 0xfee0_1000n);
  wr(2, 28, 4, 0xffff_ffff);
  assert.is(rd(2, 28, 4), 1n, 'reserved vector-control bits are RO 0');
  wr(2, 0x800, 8, 0xffn);
  assert.is(rd(2, 0x800, 8), 0n, 'PBA is read-only');
  assert.equal(inst().calls, before);
  rd(2, 0x1000, 4);
  assert.is(inst().calls.regionRead, before.regionRead + 1, 'the rest of the BAR is the plugin');
});

test('MSI-X: masked vectors set the pending bit; unmasking delivers and clears it', () => {
  const { device, io, wr, rd, irqs, cfg } = setup();
  device.attach(io);
  const msix = cfg.msixOffset ?? 0;
  wr(REGION_CONFIG, msix + 2, 2, 0x8000);
  wr(0, REG.IRQ_RAISE, 4, 2);
  assert.equal(irqs, []);
  assert.is(rd(2, 0x800, 8), 0x4n);
  wr(2, 2 * 16 + 12, 4, 0);
  assert.equal(irqs, ['msix:2']);
  assert.is(rd(2, 0x800, 8), 0n);
  wr(0, REG.IRQ_RAISE, 4, 2);
  assert.equal(irqs, ['msix:2', 'msix:2']);
});

test('MSI-X: the function mask holds every vector until cleared', () => {
  const { device, io, wr, irqs, cfg } = setup();
  device.attach(io);
  const msix = cfg.msixOffset ?? 0;
  for (let v = 0; v < 4; v++) wr(2, v * 16 + 12, 4, 0);
  wr(REGION_CONFIG, msix + 2, 2, 0xc000);
  wr(0, REG.IRQ_RAISE, 4, 1);
  wr(0, REG.IRQ_RAISE, 4, 3);
  assert.equal(irqs, []);
  wr(REGION_CONFIG, msix + 2, 2, 0x8000);
  assert.equal(irqs, ['msix:1', 'msix:3']);
  assert.is(device.stats().irqsPended, 2);
});

test('transport masks (SET_IRQS) hold vectors; unmask re-signals an asserted INTx', () => {
  const { device, io, wr, irqs } = setup();
  device.attach(io);
  device.irqState(IRQ_INTX, 0, 1, 'mask');
  wr(0, REG.IRQ_RAISE, 4, 0);
  assert.equal(irqs, []);
  device.irqState(IRQ_INTX, 0, 1, 'unmask');
  assert.equal(irqs, ['intx:0']);
  device.irqState(IRQ_MSI, 3, 1, 'trigger');
  assert.equal(irqs, ['intx:0', 'msi:3']);
  assert.throws(() => device.irqState(IRQ_MSIX, 3, 2, 'mask'), isRangeError);
});

test('a model rebuilt from the state snapshots keeps the MSI-X table and the transport masks', () => {
  // what a watchdog restart does: the old worker's model reports, the new one starts from it
  const configs: Uint8Array[] = [];
  const routing: IrqSnapshot[] = [];
  const first = setup({
    onConfigState: (s) => configs.push(s),
    onIrqState: (s) => routing.push(s),
  });
  first.device.attach(first.io);
  const msix = first.cfg.msixOffset ?? 0;
  first.wr(REGION_CONFIG, msix + 2, 2, 0x8000); // MSI-X enable
  first.wr(2, 1 * 16 + 12, 4, 0); // vector 1 unmasked in the table
  first.wr(2, 3 * 16 + 0, 4, 0xfee01000); // vector 3's address, still masked
  first.device.irqState(IRQ_MSIX, 1, 1, 'mask'); // ... and the transport masks vector 1
  first.device.irqState(IRQ_MSIX, 1, 1, 'trigger'); // (a trigger is no state)
  assert.is(routing.length, 3);
  const last = routing.at(-1);
  assert.ok(last && configs.length > 0);
  assert.equal(last.clientMasked, [[IRQ_MSIX, [1]]]);

  const second = setup({ configState: configs.at(-1), irqState: last });
  second.device.attach(second.io);
  assert.is(second.rd(2, 3 * 16, 4), 0xfee01000n, 'the table as the guest wrote it');
  second.wr(0, REG.IRQ_RAISE, 4, 1);
  assert.equal(second.irqs, [], 'vector 1 is still masked by the transport');
  second.device.irqState(IRQ_MSIX, 1, 1, 'unmask');
  assert.equal(second.irqs, ['msix:1']);
  second.wr(0, REG.IRQ_RAISE, 4, 3);
  assert.equal(second.irqs, ['msix:1'], 'vector 3 is still masked in the table');

  // a snapshot of another device is refused instead of half-applied
  const bad = { msixTable: new Uint8Array(16), clientMasked: [] };
  assert.throws(() => setup({ irqState: bad }), isRangeError);
  const outside = {
    msixTable: last.msixTable,
    clientMasked: [[IRQ_MSIX, [4]]] as Array<[number, number[]]>,
  };
  assert.throws(() => setup({ irqState: outside }), isRangeError);
});

test('detach and reset report the routing and config they clear', () => {
  const configs: Uint8Array[] = [];
  const routing: IrqSnapshot[] = [];
  const { device, io, wr, cfg } = setup({
    onConfigState: (s) => configs.push(s),
    onIrqState: (s) => routing.push(s),
  });
  device.attach(io);
  device.irqState(IRQ_INTX, 0, 1, 'mask');
  device.detach();
  assert.equal(routing.at(-1)?.clientMasked, [], 'the transport took its masks along');
  const msix = cfg.msixOffset ?? 0;
  wr(REGION_CONFIG, 4, 2, 0x0006);
  wr(2, 0 * 16 + 12, 4, 0);
  assert.is(routing.at(-1)?.msixTable[12], 0);
  device.reset();
  assert.is(routing.at(-1)?.msixTable[12], 1, 'reset masks the table again');
  const afterReset = configs.at(-1);
  assert.ok(afterReset);
  assert.is(afterReset[4], 0, 'and the config snapshot says so: no stale command register');
  assert.is(afterReset[msix + 3] ?? 0, 0);
});

test('invalid and ungranted vectors are refused to the plugin and counted', () => {
  const { device, io, wr, rd } = setup({ grant: { ...GRANT_ALL, irqVectors: [0] } });
  device.attach(io);
  wr(0, REG.IRQ_RAISE, 4, 1);
  assert.is(ERR_CODES[Number(rd(0, REG.LAST_ERR, 4))], 'not-granted');
  assert.equal(device.stats().denied, { irq: 1 });
  const other = setup();
  other.wr(0, REG.IRQ_RAISE, 4, 4);
  assert.is(ERR_CODES[Number(other.rd(0, REG.LAST_ERR, 4))], 'invalid-vector');
});

test('DMA before attach and after detach fails with not-mapped', () => {
  const { device, io, wr, rd, ram } = setup();
  const dmaRead = () => {
    wr(0, REG.DMA_IOVA, 8, 0x100);
    wr(0, REG.DMA_LEN, 4, 4);
    wr(0, REG.DMA_CMD, 4, 1);
    return ERR_CODES[Number(rd(0, REG.LAST_ERR, 4))];
  };
  assert.is(dmaRead(), 'not-mapped');
  device.attach(io);
  ram.set([1, 2, 3, 4], 0x100);
  assert.is(dmaRead(), '');
  assert.is(rd(0, REG.BUF, 4), 0x0403_0201n);
  device.detach();
  assert.is(dmaRead(), 'not-mapped');
});

test('a returned access error throws with its errno and does not fence', () => {
  const { device, rd } = setup();
  try {
    rd(0, REG.UNSUPPORTED, 4);
    assert.unreachable('no error');
  } catch (err) {
    assert.instance(err, PluginError);
    assert.is((err as PluginError).kind, 'returned');
    assert.is((err as PluginError).errno, 95);
  }
  assert.is(device.stats().fenced, false);
  assert.is(device.stats().accessErrors, 1);
});

test('a trap fences: the access returns, reads are all-ones, writes dropped', () => {
  const { device, rd, wr, inst } = setup();
  wr(0, REG.SCRATCH, 4, 0x1234);
  wr(0, REG.TRAP, 4, 1);
  const s = device.stats();
  assert.equal([s.fenced, s.fences, s.restarts], [true, 1, 0]);
  assert.ok(inst().disposed);
  assert.is(rd(0, REG.SCRATCH, 4), 0xffff_ffffn);
  assert.is(rd(0, REG.SCRATCH, 8), 0xffff_ffff_ffff_ffffn);
  wr(0, REG.SCRATCH, 4, 0x5678);
  assert.is(rd(REGION_CONFIG, 0, 4), 0x10f0_1af4n, 'emulated config space stays');
  assert.is(rd(REGION_CONFIG, REG.CONFIG_REG, 4), 0xffff_ffffn, 'plugin config reads all-ones');
});

test('a fenced plugin restarts from reset state after the backoff', () => {
  const { device, clock, rd, wr, plugin } = setup({ restartBackoffMs: [5] });
  wr(0, REG.SCRATCH, 4, 0x1234);
  rd(0, REG.TRAP, 4);
  clock.advance(5 * MS - 1);
  assert.ok(device.stats().fenced);
  clock.advance(1);
  assert.not.ok(device.stats().fenced);
  assert.is(device.stats().restarts, 1);
  assert.is(plugin.instances.length, 2);
  assert.is(rd(0, REG.SCRATCH, 4), 0n);
});

test('consecutive fences back off through the list, repeating the last delay', () => {
  const { device, clock, wr } = setup({ restartBackoffMs: [0, 100, 1000], quietPeriodMs: 10_000 });
  const restartAfter = (): number => {
    wr(0, REG.TRAP, 4, 1);
    let ms = 0;
    for (; device.stats().fenced; ms++) clock.advance(MS);
    return ms;
  };
  clock.advance(0);
  const delays = [restartAfter(), restartAfter(), restartAfter(), restartAfter()];
  assert.equal(
    delays,
    [0, 100, 1000, 1000].map((d) => Math.max(d, 1)),
  );
  assert.is(device.stats().consecutiveFences, 4);
});

test('a successful access a quiet period after restart forgives earlier fences', () => {
  const { device, clock, wr, rd } = setup({ restartBackoffMs: [0, 100], quietPeriodMs: 50 });
  wr(0, REG.TRAP, 4, 1);
  clock.advance(0);
  rd(0, REG.SCRATCH, 4);
  assert.is(device.stats().consecutiveFences, 1, 'not yet quiet');
  clock.advance(50 * MS);
  rd(0, REG.SCRATCH, 4);
  assert.is(device.stats().consecutiveFences, 0);
  wr(0, REG.TRAP, 4, 1);
  clock.advance(0);
  assert.not.ok(device.stats().fenced, 'back to the first (0 ms) delay');
});

test('a restart whose describe() changed is another fence', () => {
  const { device, clock, wr, plugin } = setup({ restartBackoffMs: [0, 10] });
  wr(0, REG.TRAP, 4, 1);
  plugin.describe = () => ({ ...fakeDescription(), deviceId: 0x1111 });
  clock.advance(0);
  assert.equal([device.stats().fenced, device.stats().fences], [true, 2]);
  plugin.describe = fakeDescription;
  clock.advance(10 * MS);
  assert.equal([device.stats().fenced, device.stats().restarts], [false, 1]);
});

test('fencing cancels the plugin timers and drops its INTx line', () => {
  const { device, clock, wr, cfg, inst } = setup();
  wr(0, REG.IRQ_RAISE, 4, 0);
  wr(0, REG.TIMER_NS, 4, 1000);
  const first = inst();
  wr(0, REG.TRAP, 4, 1);
  assert.is(cfg.read(0x06, 2) & 0x08, 0);
  assert.equal(clock.pending, ['host:restart']);
  clock.advance(10_000);
  assert.is(first.calls.timer, 0);
  assert.is(device.stats().restarts, 1);
});

test('plugin timers fire on the device clock', () => {
  const { device, io, clock, wr, rd, irqs } = setup();
  device.attach(io);
  wr(0, REG.TIMER_NS, 4, 10_000);
  clock.advance(9_999);
  assert.is(rd(0, REG.TIMERS_FIRED, 4), 0n);
  clock.advance(1);
  assert.is(rd(0, REG.TIMERS_FIRED, 4), 1n);
  assert.equal(irqs, ['intx:0']);
});

test('stream input calls stream-ready once per arrival; output reaches the peer', () => {
  const { device, io, rd, wr, inst, output } = setup();
  device.streamInput(new Uint8Array([1, 2, 3]));
  device.streamInput(new Uint8Array([4]));
  assert.is(inst().calls.streamReady, 2);
  assert.is(rd(0, REG.STREAM_TX, 4), 4n);
  assert.is(rd(0, REG.STREAM_RX, 4), 4n);
  wr(0, REG.STREAM_TX, 4, 0x41);
  assert.equal(output, [], 'held while no peer is attached');
  device.attach(io);
  assert.equal(output, [0x41]);
  wr(0, REG.STREAM_TX, 4, 0x42);
  assert.equal(output, [0x41, 0x42]);
});

test('stream input beyond the 64 KiB buffer is dropped and counted', () => {
  const { device, rd } = setup();
  device.streamInput(new Uint8Array(70 * 1024));
  assert.is(device.stats().streamInDropped, 6 * 1024);
  assert.is(rd(0, REG.STREAM_TX, 4), BigInt(64 * 1024));
});

test('hot reload carries state into the new plugin', () => {
  const { device, rd, wr, inst } = setup();
  wr(0, REG.SCRATCH, 4, 0xcafe);
  const old = inst();
  const next = createFakePlugin({ version: 2 });
  device.reload(next);
  assert.ok(old.disposed);
  assert.is(rd(0, REG.VERSION, 4), 2n);
  assert.is(rd(0, REG.SCRATCH, 4), 0xcafen);
  assert.is(device.stats().reloads, 1);
});

test('a reload that fails leaves the old plugin running', () => {
  const { device, rd, wr, inst } = setup();
  wr(0, REG.SCRATCH, 4, 0xcafe);
  const other = createFakePlugin({
    version: 2,
    describe: () => ({ ...fakeDescription(), revision: 3 }),
  });
  assert.throws(
    () => device.reload(other),
    (e: unknown) => e instanceof PluginError && e.kind === 'invalid',
  );
  const refusing = createFakePlugin({ version: 3 });
  refusing.failLoadState = true;
  assert.throws(
    () => device.reload(refusing),
    (e: unknown) => e instanceof PluginError && e.kind === 'returned',
  );
  assert.ok(other.instances[0]?.disposed && refusing.instances[0]?.disposed);
  assert.not.ok(inst(0).disposed);
  assert.is(rd(0, REG.VERSION, 4), 1n);
  assert.is(rd(0, REG.SCRATCH, 4), 0xcafen);
  assert.is(device.stats().reloads, 0);
});

test('a reload cancels the old timers; timers armed by a failed load-state never fire', () => {
  const { device, clock, rd, wr, plugin } = setup();
  wr(0, REG.TIMER_NS, 4, 1000);
  const failing = createFakePlugin({ version: 2 });
  failing.armTimerOnLoad = true;
  failing.failLoadState = true;
  assert.throws(
    () => device.reload(failing),
    (e: unknown) => e instanceof PluginError,
  );
  const next = createFakePlugin({ version: 3 });
  next.armTimerOnLoad = true;
  device.reload(next);
  clock.advance(5000);
  assert.is(plugin.instances[0]?.calls.timer, 0, 'the old instance timer was cancelled');
  assert.is(failing.instances[0]?.calls.timer, 0);
  assert.is(next.instances[0]?.calls.timer, 1, 'the timer load-state armed fired');
  assert.is(rd(0, REG.TIMERS_FIRED, 4), 1n);
});

test('at most 64 timers are armed at once; the rest are refused and counted', () => {
  const { device, inst, clock } = setup();
  for (let id = 100; id < 170; id++) inst().host.clock.setTimer(id, 1000n);
  inst().host.clock.setTimer(100, 2000n);
  assert.is(device.stats().timersDropped, 6);
  assert.is(clock.pending.length, 64);
});

test('input a loopback peer sends during a plugin call arrives after that call', () => {
  const { device, io, wr, rd, inst } = setup();
  device.attach({ ...io, stream: { onDeviceOutput: (data) => device.streamInput(data) } });
  wr(0, REG.STREAM_TX, 4, 0x5a);
  assert.is(inst().calls.streamReady, 1);
  assert.is(rd(0, REG.STREAM_RX, 4), 0x5an);
});

test('reloading a fenced device starts the new plugin from reset state', () => {
  const { device, rd, wr } = setup({ restartBackoffMs: [60_000] });
  wr(0, REG.TRAP, 4, 1);
  device.reload(createFakePlugin({ version: 7 }));
  assert.not.ok(device.stats().fenced);
  assert.is(rd(0, REG.VERSION, 4), 7n);
});

test('reset returns plugin, config space and MSI-X table to power-on state', () => {
  const { device, rd, wr, cfg, inst } = setup();
  wr(0, REG.SCRATCH, 4, 0x99);
  wr(0, REG.IRQ_RAISE, 4, 0);
  wr(REGION_CONFIG, 0x04, 2, 0x0006);
  wr(2, 12, 4, 0);
  device.reset();
  assert.is(inst().calls.reset, 1);
  assert.is(rd(0, REG.SCRATCH, 4), 0n);
  assert.is(cfg.command, 0);
  assert.is(cfg.read(0x06, 2) & 0x08, 0);
  assert.is(rd(2, 12, 4), 1n);
});

test('an invalid describe() refuses to create the device', () => {
  const plugin = createFakePlugin({ describe: () => ({ ...fakeDescription(), vendorId: -1 }) });
  assert.throws(
    () => createPluginDevice({ name: 'bad', plugin, grant: GRANT_ALL, clock: new VirtualClock() }),
    (e: unknown) =>
      e instanceof PluginError && e.kind === 'invalid' && e.message.includes('vendorId'),
  );
  assert.ok(plugin.instances[0]?.disposed);
});

test('close disposes the instance and later reads are all-ones', () => {
  const { device, rd, inst, clock } = setup();
  device.close();
  assert.ok(inst().disposed);
  assert.is(rd(0, REG.SCRATCH, 4), 0xffff_ffffn);
  assert.equal(clock.pending, []);
});

test.run();

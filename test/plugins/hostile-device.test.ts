// SPDX-License-Identifier: MIT
// The hostile fixture (test/fixtures/plugins/hostile) inside the device model: each misbehaviour
// either fences the device (reads all-ones, writes dropped, then a restart from reset state
// after the backoff) or is refused at the grant check with a counter, and nothing reaches the
// host or a second device. Loops that never return cannot be stopped on the calling thread
// (V8); the worker watchdog stops those (test/vfio-user/hostile-serve.test.ts).
//
// Reachable through the model: region-read/region-write pick the behaviour by BAR offset;
// reset, save-state (reload) and stream-ready run the one armed by a write to 0x50. The
// config-read/config-write selectors (offsets 0x08-0x18) are host-emulated header bytes and
// timer ids are only those the plugin arms (it arms none), so traps in those exports, and in
// describe/load-state of a fresh instance, are covered at the engine level (engine.test.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createPluginDevice,
  type DeviceEvent,
  type PluginDeviceModel,
} from '../../host/device/model.js';
import { IRQ_MSI } from '../../host/device/types.js';
import { PluginError } from '../../host/errors.js';
import { createHarness, GRANT_ALL, type Harness } from '../../host/harness/harness.js';
import { VirtualClock } from '../../host/harness/virtual-clock.js';
import type { LogLevel } from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import {
  DMA_MAX_TRANSFER_BYTES,
  type Grant,
  grantFromManifest,
} from '../../host/plugins/grants.js';
import { readManifest } from '../../host/plugins/manifest.js';
import { compiledPlugin, MiB, pluginBytes, pluginPath } from './support.js';

const test = suite('hostile plugin in the device model');

const MAGIC = 0x686f7374;
const ONES = 0xffffffff;
/** behaviour codes = BAR0 offsets (hostile.c) */
const B = { OK: 0x00, RETURN_ERROR: 0x04, TRAP: 0x08, MEMORY_BOMB: 0x14, RECURSE: 0x18 } as const;
/** actions: region-write offsets; their outcome reads back from STATUS */
const A = {
  IRQ_RAISE: 0x40,
  DMA_READ: 0x44,
  DMA_READ_LEN: 0x48,
  LOG_FLOOD: 0x4c,
  ARM: 0x50,
  DMA_WRITE: 0x54,
  IRQ_LOWER: 0x58,
} as const;
const STATUS = 0x30;
/** STATUS = 0x100 | the WIT error case's index (types.wit dma-error / irq-error / window-error) */
const FAILED = {
  INVALID_VECTOR: 0x100,
  NOT_GRANTED: 0x101,
  TOO_LARGE: 0x103,
  WINDOW_UNSUPPORTED: 0x106,
} as const;
/** DMA windows (0.1.2): the IOVA, map (len | writable), unmap (buffer offset), a word of the buffer */
const W = { IOVA: 0x70, MAP: 0x74, UNMAP: 0x78, WORD: 0x7c } as const;
/** what the fixture's manifest asks for: DMA [0x10000, 0x20000) rw, vectors 0 and 1, log, clock */
const MANIFEST_GRANT: Grant = grantFromManifest(
  readManifest(pluginBytes('hostile'), pluginPath('hostile')).manifest,
);
/** the manifest's memory budget */
const CAP_BYTES = 4 * MiB;

interface Bench {
  device: PluginDeviceModel;
  clock: VirtualClock;
  events: DeviceEvent[];
  logs: string[];
  irqs: Array<[number, number]>;
  dmaCalls: number;
  read(offset: number): number;
  write(offset: number, value: number): void;
}

/** The hostile device on a virtual clock, 1 MiB of guest RAM at IOVA 0, restart after 1 ms. */
async function bench(grant: Grant = MANIFEST_GRANT, name = 'hostile'): Promise<Bench> {
  const clock = new VirtualClock();
  const ram = new Uint8Array(MiB);
  const b: Bench = {
    clock,
    events: [],
    logs: [],
    irqs: [],
    dmaCalls: 0,
    device: createPluginDevice({
      name,
      plugin: await compiledPlugin('hostile'),
      grant,
      clock,
      limits: { memoryBytes: CAP_BYTES },
      restartBackoffMs: [1, 10],
      log: (level: LogLevel, msg: string) => b.logs.push(`${level}: ${msg}`),
      onEvent: (e) => b.events.push(e),
    }),
    read(offset) {
      const out = new Uint8Array(4);
      b.device.read(0, offset, out);
      return new DataView(out.buffer).getUint32(0, true);
    },
    write(offset, value) {
      const data = new Uint8Array(4);
      new DataView(data.buffer).setUint32(0, value, true);
      b.device.write(0, offset, data);
    },
  };
  b.device.attach({
    irq: {
      trigger: (index, sub) => {
        b.irqs.push([index, sub]);
        return true;
      },
    },
    dma: {
      read(iova, len) {
        b.dmaCalls++;
        if (iova + BigInt(len) > BigInt(ram.length)) throw new WitError('not-mapped');
        return ram.slice(Number(iova), Number(iova) + len);
      },
      write(iova, data) {
        b.dmaCalls++;
        if (iova + BigInt(data.length) > BigInt(ram.length)) throw new WitError('not-mapped');
        ram.set(data, Number(iova));
      },
    },
  });
  return b;
}

/** An edu device next to the hostile one: it must not notice anything. */
async function bystander(): Promise<Harness> {
  const h = createHarness({ plugin: await compiledPlugin('edu'), name: 'edu' });
  h.write(0, 0x04, 4, 0x12345678);
  return h;
}

function assertBystander(h: Harness): void {
  assert.is(h.read(0, 0x00, 4), 0x010000ed, 'edu ident');
  assert.is(h.read(0, 0x04, 4), 0xedcba987, 'edu state kept');
  assert.is(h.device.stats().fences, 0);
}

/** After a fence: all-ones reads, dropped writes, then a restart from reset state. */
function assertFencedThenRestarted(b: Bench, exportName: string): void {
  const s = b.device.stats();
  assert.is(s.fenced, true, 'fenced');
  assert.is(s.fences, 1);
  assert.equal(
    b.events.map((e) => [e.kind, e.export]),
    [['fence', exportName]],
  );
  assert.is(b.read(B.OK), ONES, 'reads while fenced are all-ones');
  b.write(A.LOG_FLOOD, 3);
  assert.equal(
    b.logs.filter((l) => l.endsWith('flood')),
    [],
    'writes while fenced are dropped',
  );
  b.clock.advance(1_000_000n);
  assert.is(b.device.stats().fenced, false);
  assert.is(b.device.stats().restarts, 1);
  assert.is(b.events.at(-1)?.kind, 'restart');
  assert.is(b.read(B.OK), MAGIC, 'the restarted instance answers');
  assert.is(b.read(STATUS), 0, 'from reset state');
}

test('a memory bomb stops at the cap, fences the device, and a restart brings it back', async () => {
  const edu = await bystander();
  const b = await bench();
  b.write(A.LOG_FLOOD, 0); // a successful write first: STATUS 0
  assert.is(b.read(B.MEMORY_BOMB), ONES, 'the access in flight reads all-ones');
  assert.equal(b.logs, [`info: memory bomb stopped at pages=${CAP_BYTES / 65536}`]);
  assert.match(b.events[0]?.message ?? '', /trap/i);
  assert.is(b.device.stats().denied.log, undefined);
  assertBystander(edu);
  assertFencedThenRestarted(b, 'region-read');
  assertBystander(edu);
  b.device.close();
  edu.close();
});

test('unbounded recursion (stack overflow) fences the device; the host carries on', async () => {
  const edu = await bystander();
  const b = await bench();
  assert.is(b.read(B.RECURSE), ONES);
  assert.match(b.events[0]?.message ?? '', /call stack/i);
  assertFencedThenRestarted(b, 'region-read');
  assertBystander(edu);
  b.device.close();
  edu.close();
});

test('a trap in region-read or region-write fences; the write in flight is dropped', async () => {
  for (const [exportName, fault] of [
    ['region-read', (b: Bench) => assert.is(b.read(B.TRAP), ONES)],
    ['region-write', (b: Bench) => b.write(B.TRAP, 1)],
  ] as const) {
    const b = await bench();
    fault(b);
    assertFencedThenRestarted(b, exportName);
    b.device.close();
  }
});

test('a trap armed for reset, stream-ready or save-state fences in that export', async () => {
  const plugin = await compiledPlugin('hostile');
  const cases: Array<[string, (b: Bench) => void]> = [
    ['reset', (b) => b.device.reset()],
    ['stream-ready', (b) => b.device.streamInput(new Uint8Array([1]))],
    [
      'save-state',
      (b) => {
        const err = (() => {
          try {
            b.device.reload(plugin);
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        assert.instance(err, PluginError, 'a reload whose save-state traps fails');
        assert.is((err as PluginError).kind, 'trap');
      },
    ],
  ];
  for (const [exportName, call] of cases) {
    const b = await bench(GRANT_ALL);
    b.write(A.ARM, B.TRAP);
    call(b);
    assertFencedThenRestarted(b, exportName);
    b.device.close();
  }
});

test('a returned access error is EIO for that access, not a fence', async () => {
  const b = await bench();
  let err: unknown;
  try {
    b.read(B.RETURN_ERROR);
  } catch (e) {
    err = e;
  }
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'returned');
  assert.is((err as PluginError).errno, 5);
  const s = b.device.stats();
  assert.is(s.fenced, false);
  assert.is(s.accessErrors, 1);
  assert.is(b.read(B.OK), MAGIC);
  b.device.close();
});

test('DMA outside the granted window is refused: counted, not copied, device not fenced', async () => {
  const edu = await bystander();
  const b = await bench();
  b.write(A.DMA_READ, 0x10000);
  assert.is(b.read(STATUS), 0, 'inside [0x10000, 0x20000): allowed');
  assert.is(b.dmaCalls, 1);
  for (const [action, iova] of [
    [A.DMA_READ, 0x0],
    [A.DMA_READ, 0x1fff8], // straddles the end of the window
    [A.DMA_WRITE, 0x30000],
  ] as const) {
    b.write(action, iova);
    assert.is(b.read(STATUS), FAILED.NOT_GRANTED, `0x${iova.toString(16)}: err(not-granted)`);
  }
  const s = b.device.stats();
  assert.is(s.denied.dma, 3);
  assert.is(b.dmaCalls, 1, 'refused before the transport saw it');
  assert.is(s.fenced, false);
  assert.is(s.fences, 0);
  assert.is(b.read(B.OK), MAGIC);
  assertBystander(edu);
  b.device.close();
  edu.close();
});

test('dma.map-window (0.1.2) outside a served device is err(unsupported): nothing mapped, no fence', async () => {
  const b = await bench();
  b.write(W.IOVA, 0x10000); // inside the granted window
  b.write(W.MAP, 0x1000 | 1); // 4 KiB, writable
  assert.is(b.read(STATUS), FAILED.WINDOW_UNSUPPORTED, 'map-window');
  b.write(W.UNMAP, 0);
  assert.is(b.read(STATUS), FAILED.WINDOW_UNSUPPORTED, 'unmap-window');
  b.write(W.WORD, 0xabcd);
  assert.is(b.read(W.WORD), 0xabcd, "the buffer is still the plugin's own memory");
  const s = b.device.stats();
  assert.is(s.fenced, false);
  assert.is(s.fences, 0);
  assert.is(s.denied.dma ?? 0, 0, 'unsupported is no denial');
  assert.is(b.dmaCalls, 0);
  b.device.close();
});

test('an interrupt outside the granted vectors is refused and counted; the device keeps running', async () => {
  const b = await bench({ ...MANIFEST_GRANT, irqVectors: [1] });
  const msi = b.device.config.msiOffset ?? 0;
  b.device.config.write(msi + 4, 4, 0xfee00000);
  b.device.config.write(msi + 2, 2, 0x0001); // MSI enable
  b.write(A.IRQ_RAISE, 0);
  assert.is(b.read(STATUS), FAILED.NOT_GRANTED);
  b.write(A.IRQ_LOWER, 0);
  assert.is(b.read(STATUS), FAILED.NOT_GRANTED);
  assert.equal(b.irqs, []);
  assert.is(b.device.stats().denied.irq, 2);
  // Granted but beyond the device's one MSI vector: invalid-vector, which is no grant refusal.
  b.write(A.IRQ_RAISE, 1);
  assert.is(b.read(STATUS), FAILED.INVALID_VECTOR);
  assert.is(b.device.stats().denied.irq, 2);
  assert.is(b.device.stats().fenced, false);
  // With the vector granted the same raise is delivered.
  const ok = await bench({ ...MANIFEST_GRANT, irqVectors: [0] });
  ok.device.config.write(msi + 4, 4, 0xfee00000);
  ok.device.config.write(msi + 2, 2, 0x0001);
  ok.write(A.IRQ_RAISE, 0);
  assert.is(ok.read(STATUS), 0);
  assert.equal(ok.irqs, [[IRQ_MSI, 0]]);
  b.device.close();
  ok.device.close();
});

test('a log flood is rate-limited: lines over the limit are dropped and counted in denied.log', async () => {
  const b = await bench({ ...MANIFEST_GRANT, logLinesPerSecond: 10 });
  b.write(A.LOG_FLOOD, 1000);
  assert.is(b.logs.length, 10);
  assert.is(b.device.stats().denied.log, 990);
  assert.is(b.read(STATUS), 0, 'the call itself succeeded');
  assert.is(b.device.stats().fenced, false);
  b.clock.advance(1_000_000_000n); // one second of device time refills the bucket
  b.write(A.LOG_FLOOD, 20);
  assert.is(b.logs.length, 20);
  assert.is(b.device.stats().denied.log, 1000);
  // Without the log grant every line is dropped and counted.
  const mute = await bench({ ...MANIFEST_GRANT, log: false });
  mute.write(A.LOG_FLOOD, 5);
  assert.equal(mute.logs, []);
  assert.is(mute.device.stats().denied.log, 5);
  b.device.close();
  mute.device.close();
});

test('a DMA over the per-call limit is refused as too-large before any check or copy', async () => {
  const b = await bench(GRANT_ALL);
  b.write(A.DMA_READ_LEN, DMA_MAX_TRANSFER_BYTES + 1);
  assert.is(b.read(STATUS), FAILED.TOO_LARGE);
  b.write(A.DMA_READ_LEN, 0xffffffff);
  assert.is(b.read(STATUS), FAILED.TOO_LARGE);
  assert.is(b.dmaCalls, 0, 'nothing reached the transport');
  assert.is(b.device.stats().denied.dma, undefined, 'too-large is not a grant refusal');
  b.write(A.DMA_READ_LEN, 4096);
  assert.is(b.read(STATUS), 0);
  assert.is(b.device.stats().fenced, false);
  b.device.close();
});

test('a malformed describe() is refused with PluginError invalid; the host builds the next device', async () => {
  const bad = await compiledPlugin('hostile-describe');
  let err: unknown;
  try {
    createPluginDevice({ name: 'bad', plugin: bad, grant: GRANT_ALL, clock: new VirtualClock() });
  } catch (e) {
    err = e;
  }
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'invalid');
  assert.match((err as PluginError).message, /bars|msiVectors/);
  const b = await bench();
  assert.is(b.read(B.OK), MAGIC);
  b.device.close();
});

test('repeated fences back off by the schedule and keep counting', async () => {
  const b = await bench();
  b.read(B.TRAP);
  b.clock.advance(1_000_000n); // backoff[0] = 1 ms
  assert.is(b.device.stats().restarts, 1);
  b.read(B.TRAP);
  assert.is(b.device.stats().consecutiveFences, 2);
  b.clock.advance(9_999_999n);
  assert.is(b.device.stats().fenced, true, 'backoff[1] = 10 ms not over');
  assert.is(b.read(B.OK), ONES);
  b.clock.advance(1n);
  assert.is(b.device.stats().fenced, false);
  assert.equal([b.device.stats().fences, b.device.stats().restarts], [2, 2]);
  b.device.close();
});

test.run();

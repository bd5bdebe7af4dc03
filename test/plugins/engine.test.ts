// SPDX-License-Identifier: MIT
// The engine interface (engine.ts) on the tier's engine (support.ts): compile, every export,
// the error boundary (returned errors, traps, poisoning), the memory cap and dispose. Run on
// both engines; only the trap texts differ, since each engine words its own traps.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import { type PluginInstance, WitError } from '../../host/plugins/engine.js';
import { thrown } from '../helpers/thrown.js';
import { compiledPlugin, engine, fakeHost, MiB, onlyOn, pluginBytes } from './support.js';

const test = suite(`${engine.name} engine`);

/** How each engine words the traps below (V8's RuntimeError/RangeError, wasmtime's Trap). */
const TRAP_TEXT = {
  v8: { unreachable: /RuntimeError: unreachable/, stackOverflow: /Maximum call stack/ },
  wasmtime: {
    unreachable: /wasm trap: wasm `unreachable` instruction executed/,
    stackOverflow: /wasm trap: call stack exhausted/,
  },
}[engine.name];

/** What `fn` threw (fails the test if it returned). */
function assertTrap(err: unknown, exportName: string, match?: RegExp): asserts err is PluginError {
  assert.instance(err, PluginError);
  const e = err as PluginError;
  assert.is(e.kind, 'trap', e.message);
  assert.is(e.export, exportName);
  if (match) assert.match(e.message, match);
}

async function edu(host = fakeHost()) {
  const plugin = await compiledPlugin('edu');
  return { host, dev: plugin.instantiate(host, { memoryBytes: 16 * MiB }) };
}

async function hostile(host = fakeHost(), memoryBytes = 16 * MiB) {
  const plugin = await compiledPlugin('hostile');
  return { host, dev: plugin.instantiate(host, { memoryBytes }) };
}

const EDU_IDENT = 0x00n;
const EDU_LIVENESS = 0x04n;
const EDU_FACT = 0x08n;
const EDU_STATUS = 0x20n;
const EDU_FACT_TIMER = 1;

test('compile reads ABI 0.1.0, the emulated-device world and the imported interfaces', async () => {
  const plugin = await compiledPlugin('edu');
  assert.is(plugin.engine, engine.name);
  assert.is(plugin.abi, '0.1.0');
  assert.is(plugin.world, 'emulated-device');
  assert.equal([...plugin.imports].sort(), ['clock', 'dma', 'irq', 'log']);
});

test('edu describe() reports QEMU edu ids, one 1 MiB BAR, INTx A and one MSI vector', async () => {
  const { dev } = await edu();
  const d = dev.describe();
  assert.equal([d.vendorId, d.deviceId, d.classCode, d.revision], [0x1234, 0x11e8, 0xff00, 0x10]);
  assert.equal(d.bars, [{ index: 0, sizeBytes: 1n << 20n, kind: 'mem32', prefetchable: false }]);
  assert.is(d.irqs.intx, 'a');
  assert.is(d.irqs.msiVectors, 1);
  assert.is(d.irqs.msix, undefined);
  assert.equal(d.claimedRanges, []);
});

test('edu ident reads 0x010000ed and liveness returns the complement', async () => {
  const { dev } = await edu();
  assert.is(dev.regionRead(0, EDU_IDENT, 4), 0x010000edn);
  dev.regionWrite(0, EDU_LIVENESS, 4, 0x12345678n);
  assert.is(dev.regionRead(0, EDU_LIVENESS, 4), 0xedcba987n);
});

test('edu factorial completes when the host fires the timer the plugin armed', async () => {
  const { host, dev } = await edu();
  dev.regionWrite(0, EDU_FACT, 4, 10n);
  assert.is(dev.regionRead(0, EDU_STATUS, 4) & 1n, 1n);
  assert.ok(host.timers.has(EDU_FACT_TIMER), 'factorial timer armed through clock.set-timer');
  host.timers.delete(EDU_FACT_TIMER);
  dev.timer(EDU_FACT_TIMER);
  assert.is(dev.regionRead(0, EDU_STATUS, 4) & 1n, 0n);
  assert.is(dev.regionRead(0, EDU_FACT, 4), 3628800n);
});

test("an export's returned err becomes WitError with the WIT case as code", async () => {
  const { dev } = await edu();
  const outOfRange = thrown(() => dev.regionRead(1, 0n, 4));
  assert.instance(outOfRange, WitError);
  assert.is((outOfRange as WitError).code, 'out-of-range');
  assert.is((thrown(() => dev.regionRead(0, 2n, 4)) as WitError).code, 'invalid-width');
  // The device keeps working after a returned error.
  assert.is(dev.regionRead(0, EDU_IDENT, 4), 0x010000edn);
});

test("load-state's err becomes WitError carrying the plugin's message", async () => {
  const { dev } = await edu();
  const err = thrown(() => dev.loadState(new Uint8Array(3)));
  assert.instance(err, WitError);
  assert.match((err as WitError).code, /wrong size/);
});

test('save-state and load-state round-trip through the wrapper', async () => {
  const { dev } = await edu();
  dev.regionWrite(0, EDU_LIVENESS, 4, 0xa5a5a5a5n);
  const state = dev.saveState();
  dev.reset();
  assert.is(dev.regionRead(0, EDU_LIVENESS, 4), 0n);
  dev.loadState(state);
  assert.is(dev.regionRead(0, EDU_LIVENESS, 4), 0x5a5a5a5an);
});

test("a host import's WitError reaches the plugin as err(case), not as a trap", async () => {
  const { host, dev } = await edu();
  // edu DMA from IOVA 0x100000, outside the fake's 64 KiB: dma.read returns err(not-mapped),
  // edu logs a warning and completes the command.
  dev.regionWrite(0, 0x80n, 8, 0x100000n);
  dev.regionWrite(0, 0x88n, 8, 0x40000n);
  dev.regionWrite(0, 0x90n, 8, 16n);
  dev.regionWrite(0, 0x98n, 4, 1n);
  dev.timer(2);
  assert.is(dev.regionRead(0, 0x98n, 4) & 1n, 0n, 'command completed');
  assert.ok(
    host.logs.some((l) => l.startsWith('warn:')),
    host.logs.join('\n'),
  );
});

test('a host import that throws a non-WitError traps and poisons the instance', async () => {
  const host = fakeHost();
  host.irq.raise = () => {
    throw new TypeError('host bug');
  };
  const { dev } = await hostile(host);
  const err = thrown(() => dev.regionWrite(0, 0x40n, 4, 0n));
  assertTrap(err, 'region-write', /irq\.raise threw TypeError: host bug/);
  assertTrap(
    thrown(() => dev.regionRead(0, 0n, 4)),
    'region-read',
    /poisoned/,
  );
});

test('a WitError from an import whose WIT result has no error case is a trap', async () => {
  const host = fakeHost();
  host.log.log = () => {
    throw new WitError('not-granted');
  };
  const { dev } = await hostile(host);
  assertTrap(
    thrown(() => dev.regionWrite(0, 0x4cn, 4, 1n)),
    'region-write',
    /log\.log/,
  );
});

test('unreachable in any export is PluginError trap, and later calls do not enter the plugin', async () => {
  const cases: Array<[string, (d: PluginInstance) => unknown]> = [
    ['region-read', (d) => d.regionRead(0, 0x08n, 4)],
    ['region-write', (d) => d.regionWrite(0, 0x08n, 4, 0n)],
    ['config-read', (d) => d.configRead(0x08, 4)],
    ['config-write', (d) => d.configWrite(0x08, 4, 0)],
    ['timer', (d) => d.timer(0x08)],
  ];
  for (const [name, call] of cases) {
    const { host, dev } = await hostile();
    assertTrap(
      thrown(() => call(dev)),
      name,
      TRAP_TEXT.unreachable,
    );
    // A poisoned instance refuses without calling in: the log flood would show up in host.logs.
    assertTrap(
      thrown(() => dev.regionWrite(0, 0x4cn, 4, 3n)),
      'region-write',
      /poisoned/,
    );
    assert.equal(host.logs, []);
  }
});

test('exports without a selector trap when a trap is armed for them', async () => {
  const calls: Array<[string, (d: PluginInstance) => unknown]> = [
    ['describe', (d) => d.describe()],
    ['reset', (d) => d.reset()],
    ['save-state', (d) => d.saveState()],
    ['load-state', (d) => d.loadState(new Uint8Array(4))],
    ['stream-ready', (d) => d.streamReady()],
  ];
  for (const [name, call] of calls) {
    const { dev } = await hostile();
    dev.regionWrite(0, 0x50n, 4, 0x08n); // arm: trap
    assertTrap(
      thrown(() => call(dev)),
      name,
    );
  }
});

test('unbounded recursion is a PluginError trap (stack overflow) and the host carries on', async () => {
  const { dev } = await hostile();
  assertTrap(
    thrown(() => dev.regionRead(0, 0x18n, 4)),
    'region-read',
    TRAP_TEXT.stackOverflow,
  );
  const { dev: fresh } = await hostile();
  assert.is(fresh.regionRead(0, 0n, 4), 0x686f7374n);
});

test('a memory bomb stops at the cap, traps, and a fresh instance works', async () => {
  const cap = 4 * MiB;
  const { host, dev } = await hostile(fakeHost(), cap);
  assertTrap(
    thrown(() => dev.regionRead(0, 0x14n, 4)),
    'region-read',
  );
  assert.equal(host.logs, [`info: memory bomb stopped at pages=${cap / 65536}`]);
  assert.is(dev.memoryBytes?.(), cap);
  const { dev: fresh } = await hostile(fakeHost(), cap);
  assert.is(fresh.regionRead(0, 0n, 4), 0x686f7374n);
  assert.is(fresh.memoryBytes?.(), 65536, 'the fresh instance starts from its minimum');
});

test('the memory cap applies per instantiation: a smaller cap stops the bomb sooner', async () => {
  const { host, dev } = await hostile(fakeHost(), MiB);
  assertTrap(
    thrown(() => dev.regionRead(0, 0x14n, 4)),
    'region-read',
  );
  assert.equal(host.logs, ['info: memory bomb stopped at pages=16']);
});

test('a cap below the memory minimum refuses instantiation with PluginError denied', async () => {
  const plugin = await compiledPlugin('hostile');
  const err = thrown(() => plugin.instantiate(fakeHost(), { memoryBytes: 1000 }));
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'denied');
  assert.match((err as PluginError).message, /65536 bytes .* cap of 1000 bytes/);
});

test('a disposed instance refuses calls with PluginError', async () => {
  const { dev } = await hostile();
  dev.dispose();
  dev.dispose();
  const err = thrown(() => dev.regionRead(0, 0n, 4));
  assert.instance(err, PluginError);
  assert.match((err as PluginError).message, /disposed/);
});

test('a malformed describe() is returned as the plugin gave it (the device model validates)', async () => {
  const plugin = await compiledPlugin('hostile-describe');
  const d = plugin.instantiate(fakeHost(), { memoryBytes: MiB }).describe();
  assert.is(d.bars[0]?.sizeBytes, 3n);
  assert.is(d.irqs.msiVectors, 3);
});

// V8 only: the layout of jco's transpile cache; wasmtime's cache has its own (wasmtime.test.ts).
onlyOn('v8', test)(
  'a second compile is served from the on-disk cache without rewriting it',
  async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'vfiobox-jco-'));
    try {
      const bytes = pluginBytes('edu');
      await engine.compile(bytes, { cacheDir });
      const [version] = readdirSync(cacheDir);
      assert.ok(version, 'a <jco-version> directory');
      const [sha] = readdirSync(join(cacheDir, version));
      assert.is(sha?.length, 64);
      const glue = join(cacheDir, version, sha ?? '', 'plugin.js');
      const before = statSync(glue).mtimeMs;
      const again = await engine.compile(bytes, { cacheDir });
      assert.is(statSync(glue).mtimeMs, before);
      assert.is(
        again.instantiate(fakeHost(), { memoryBytes: MiB }).regionRead(0, 0n, 4),
        0x010000edn,
      );
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  },
);

test('bytes that are not a component are refused with PluginError invalid', async () => {
  const err = await engine.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'invalid');
  assert.match((err as PluginError).message, /core wasm module, not a component/);
});

test.run();

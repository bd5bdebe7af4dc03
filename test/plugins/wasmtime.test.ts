// SPDX-License-Identifier: MIT
// What the wasmtime engine does that V8 cannot, on the real native side: a call over its budget
// is stopped on the calling thread (V8 needs the worker watchdog), the memory cap is a store
// limit, host-import outcomes cross the C boundary, and compiled artifacts are cached on disk
// and recompiled when damaged. The behaviours both engines share are in engine.test.ts.
// Registered on the plugins-wasmtime tier only (skipped on v8: every test is about wasmtime).
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import type { PluginInstance } from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import { wasmtimeEngine } from '../../host/plugins/engines/wasmtime.js';
import { thrown } from '../helpers/thrown.js';
import { compiledPlugin, type FakeHost, fakeHost, MiB, onlyOn, pluginBytes } from './support.js';

const suiteTests = suite('wasmtime engine');
const test = onlyOn('wasmtime', suiteTests);

/** hostile.c behaviour codes (BAR0 offsets) and actions (region-write offsets) */
const B = { OK: 0x00n, TRAP: 0x08n, SPIN: 0x0cn, HOST_LOOP: 0x10n, MEMORY_BOMB: 0x14n } as const;
const A = { IRQ_RAISE: 0x40n, DMA_READ: 0x44n, DMA_WRITE: 0x54n } as const;
const STATUS = 0x30n;
const MAGIC = 0x686f7374n;
/** STATUS after a failed action: 0x100 | the dma-error case's index (types.wit: not-mapped = 0) */
const FAILED_NOT_MAPPED = 0x100n;
/** Long for an honest call of the hostile plugin (tens of ns), short for a test to wait. */
const BUDGET_MS = 50;

async function hostile(host: FakeHost = fakeHost(), memoryBytes = 16 * MiB, budgetMs = BUDGET_MS) {
  const plugin = await compiledPlugin('hostile');
  return { host, dev: plugin.instantiate(host, { memoryBytes, budgetMs }) };
}

function assertTrap(err: unknown, exportName: string): PluginError {
  assert.instance(err, PluginError);
  const e = err as PluginError;
  assert.is(e.kind, 'trap', e.message);
  assert.is(e.export, exportName);
  return e;
}

function assertPoisoned(dev: PluginInstance): void {
  const err = assertTrap(
    thrown(() => dev.regionRead(0, B.OK, 4)),
    'region-read',
  );
  assert.match(err.message, /poisoned/);
}

for (const [what, code] of [
  ['an export that spins forever', B.SPIN],
  ['a loop calling a host import (clock.now-ns) forever', B.HOST_LOOP],
] as const) {
  test(`${what} is stopped at its budget on this thread, as a trap that poisons`, async () => {
    const { dev } = await hostile();
    const err = assertTrap(
      thrown(() => dev.regionRead(0, code, 4)),
      'region-read',
    );
    assert.match(err.message, new RegExp(`exceeded its budget of ${BUDGET_MS} ms`));
    assertPoisoned(dev);
    const { dev: fresh } = await hostile();
    assert.is(fresh.regionRead(0, B.OK, 4), MAGIC, 'a fresh instance works');
  });
}

test('a memory bomb is capped by memoryBytes: memory.grow fails at the cap', async () => {
  const cap = 2 * MiB;
  const { host, dev } = await hostile(fakeHost(), cap);
  const err = assertTrap(
    thrown(() => dev.regionRead(0, B.MEMORY_BOMB, 4)),
    'region-read',
  );
  assert.equal(host.logs, [`info: memory bomb stopped at pages=${cap / 65536}`]);
  assert.is(dev.memoryBytes?.(), cap);
  assert.match(err.message, new RegExp(`at its cap of ${cap} bytes`));
});

test('a trap poisons the instance: later calls refuse without entering the plugin', async () => {
  const { host, dev } = await hostile();
  assertTrap(
    thrown(() => dev.regionRead(0, B.TRAP, 4)),
    'region-read',
  );
  assertPoisoned(dev);
  assertTrap(
    thrown(() => dev.regionWrite(0, 0x4cn, 4, 3n)),
    'region-write',
  );
  assert.equal(host.logs, [], 'the log flood never ran');
});

test("a host import's WitError becomes err(code) in the plugin, which carries on", async () => {
  const { dev } = await hostile();
  dev.regionWrite(0, A.DMA_READ, 4, 0x100000n); // outside the fake's 64 KiB: not-mapped
  assert.is(dev.regionRead(0, STATUS, 4), FAILED_NOT_MAPPED);
  dev.regionWrite(0, A.DMA_READ, 4, 0x1000n);
  assert.is(dev.regionRead(0, STATUS, 4), 0n, 'the next DMA succeeds');
});

test('a host import that throws a plain Error traps, naming the import', async () => {
  const host = fakeHost();
  host.irq.raise = () => {
    throw new Error('host bug');
  };
  const { dev } = await hostile(host);
  const err = assertTrap(
    thrown(() => dev.regionWrite(0, A.IRQ_RAISE, 4, 0n)),
    'region-write',
  );
  assert.match(err.message, /irq\.raise threw Error: host bug/);
  assertPoisoned(dev);
});

test('dma.readInto and writeFrom copy straight into and out of the plugin; the lent memory dies with it', async () => {
  const host = fakeHost();
  host.ram.fill(0xff, 0x200, 0x210);
  const lent: ArrayBuffer[] = [];
  const reads: [bigint, number][] = [];
  // the one-copy interface of a real host (the vfio-user server's DmaSpace): the bytes go
  // between `ram` and the lent plugin memory, and the plain read/write must not be used
  host.dma.read = () => {
    throw new Error('dma.read: readInto was there');
  };
  host.dma.write = () => {
    throw new Error('dma.write: writeFrom was there');
  };
  host.dma.readInto = (iova, len, target) => {
    reads.push([iova, len]);
    const at = target.alloc(len);
    const memory = target.memory();
    lent.push(memory);
    new Uint8Array(memory, at, len).set(host.ram.subarray(Number(iova), Number(iova) + len));
    return at;
  };
  host.dma.writeFrom = (iova, memory, offset, len) => {
    lent.push(memory);
    host.ram.set(new Uint8Array(memory, offset, len), Number(iova));
  };
  const { dev } = await hostile(host);
  dev.regionWrite(0, A.DMA_READ, 4, 0x100n); // hostile.c: dma.read(0x100, 16) into its buffer
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
  assert.equal(reads, [[0x100n, 16]]);
  dev.regionWrite(0, A.DMA_WRITE, 4, 0x200n); // hostile.c: dma.write(0x200, 16 zero bytes)
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
  assert.equal(
    [...host.ram.subarray(0x1f0, 0x220)],
    [...new Array(16).fill(0), ...new Array(16).fill(0), ...new Array(16).fill(0)],
  );
  assert.is(lent.length, 2);
  assert.is(lent[0], lent[1], 'one buffer lent while the memory keeps its size');
  assert.is(lent[0]?.byteLength, dev.memoryBytes?.());
  dev.dispose();
  assert.is(lent[0]?.byteLength, 0, 'detached with the instance: it cannot outlive the memory');
});

test('a saved state is a plain Uint8Array: a slice is a copy, not a view', async () => {
  const { dev } = await hostile();
  const state = dev.saveState();
  assert.is(Object.getPrototypeOf(state), Uint8Array.prototype, 'not a Node Buffer');
  const copy = state.slice();
  copy.fill(0x58);
  assert.ok(
    state.length === 0 || state.some((b) => b !== 0x58),
    'editing the slice left the state alone',
  );
});

test('an export returning err is a WitError, not a fault', async () => {
  const { dev } = await hostile();
  const err = thrown(() => dev.regionRead(0, 0x04n, 4));
  assert.instance(err, WitError);
  assert.is((err as WitError).code, 'device-error');
  assert.is(dev.regionRead(0, B.OK, 4), MAGIC);
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** <cacheDir>/wasmtime-<version>/<sha256>.cwasm after one compile of `bytes`. */
async function compileInto(cacheDir: string, bytes: Uint8Array): Promise<string> {
  await wasmtimeEngine.compile(bytes, { cacheDir, name: 'edu' });
  const [versionDir, ...others] = readdirSync(cacheDir);
  assert.equal(others, [], 'one directory per wasmtime version, nothing else');
  assert.match(versionDir ?? '', /^wasmtime-\d+\.\d+\.\d+/);
  return join(cacheDir, versionDir ?? '', `${sha256(bytes)}.cwasm`);
}

async function eduAnswers(cacheDir: string, bytes: Uint8Array): Promise<void> {
  const plugin = await wasmtimeEngine.compile(bytes, { cacheDir, name: 'edu' });
  const dev = plugin.instantiate(fakeHost(), { memoryBytes: MiB });
  assert.is(dev.regionRead(0, 0n, 4), 0x010000edn);
  dev.dispose();
}

test('the first compile writes the artifact, the second reads it without rewriting', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'vfiobox-wasmtime-'));
  try {
    const bytes = pluginBytes('edu');
    const artifact = await compileInto(cacheDir, bytes);
    assert.ok(statSync(artifact).size > 0, 'the .cwasm exists');
    const before = statSync(artifact).mtimeMs;
    await eduAnswers(cacheDir, bytes);
    assert.is(statSync(artifact).mtimeMs, before, 'served from the cache');
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('a damaged or truncated artifact is recompiled, not run', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'vfiobox-wasmtime-'));
  try {
    const bytes = pluginBytes('edu');
    const artifact = await compileInto(cacheDir, bytes);
    const good = readFileSync(artifact);
    // 64 bytes in the middle inverted: inside the code, past the header wasmtime checks
    const mid = good.length >> 1;
    const flipped = Uint8Array.from(good, (b, i) => (i >= mid && i < mid + 64 ? b ^ 0xff : b));
    for (const damaged of [flipped, good.subarray(0, 16)]) {
      writeFileSync(artifact, damaged);
      await eduAnswers(cacheDir, bytes);
      const now = readFileSync(artifact);
      assert.not.ok(now.equals(damaged), 'rewritten by a fresh compile');
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

suiteTests.run();

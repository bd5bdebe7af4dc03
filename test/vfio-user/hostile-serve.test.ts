// SPDX-License-Identifier: MIT
// The hostile fixture served over real vfio-user sockets, one device per worker as `vfiobox
// serve` runs it (DeviceSupervisor), next to an edu device in another supervisor of the same
// process. A plugin call that never returns is stopped only by the watchdog terminating its
// worker; everything else is fenced or refused inside the worker. Whatever the hostile device
// does, the edu device keeps answering and the process carries on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IRQ_MSI } from '../../host/device/types.js';
import type { DeviceRunStats, DeviceSpec, ServeEvent } from '../../host/serve/spec.js';
import { DeviceSupervisor } from '../../host/serve/supervisor.js';
import { EventFd } from '../../host/vfio/dma.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import {
  DMA_FLAG_READ,
  DMA_FLAG_WRITE,
  IRQ_SET_ACTION_MASK,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_ACTION_UNMASK,
  IRQ_SET_DATA_EVENTFD,
  IRQ_SET_DATA_NONE,
} from '../../host/vfio-user/protocol.js';
import { CACHE_DIR, pluginPath } from '../plugins/support.js';

const test = suite('hostile plugin served over vfio-user');

const MAGIC = 0x686f7374;
const EDU_IDENT = 0x010000ed;
const ONES = 0xffffffff;
const B = { OK: 0x00, TRAP: 0x08, SPIN: 0x0c, HOST_LOOP: 0x10, MEMORY_BOMB: 0x14, RECURSE: 0x18 };
const A = { IRQ_RAISE: 0x40, DMA_READ: 0x44, DMA_READ_LEN: 0x48, LOG_FLOOD: 0x4c, DMA_WRITE: 0x54 };
const STATUS = 0x30;
const FAILED = { NOT_GRANTED: 0x101, TOO_LARGE: 0x103 } as const;
/** Small, so a runaway call is stopped quickly; far above any honest call. */
const BUDGET_MS = 200;
const CONFIG = 7;
const PCI_COMMAND = 0x04;
const PCI_CAPABILITY_LIST = 0x34;
/** Bounds a wait for an event that must come; a test fails rather than hangs. */
const EVENT_TIMEOUT_MS = 20_000;

let dir = '';
let edu: Served;

interface Served {
  sup: DeviceSupervisor;
  events: ServeEvent[];
  socketPath: string;
  client: VfioUserClient;
}

async function connect(socketPath: string): Promise<VfioUserClient> {
  const client = await VfioUserClient.connect(socketPath, { timeoutMs: 10_000 });
  await client.negotiate();
  return client;
}

async function serve(name: string, spec: Partial<DeviceSpec> = {}): Promise<Served> {
  const socketPath = join(dir, `${name}.sock`);
  const sup = new DeviceSupervisor({
    name,
    pluginPath: pluginPath('hostile'),
    socketPath,
    budgetMs: BUDGET_MS,
    cacheDir: CACHE_DIR,
    ...spec,
  });
  const events: ServeEvent[] = [];
  sup.on('event', (e: ServeEvent) => events.push(e));
  await sup.start();
  return { sup, events, socketPath, client: await connect(socketPath) };
}

async function stop(s: Served): Promise<void> {
  s.client.close();
  await s.sup.stop();
}

/** Resolves with the first event named `name` from now on. */
function nextEvent(sup: DeviceSupervisor, name: string): Promise<ServeEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sup.off('event', on);
      reject(new Error(`no '${name}' event within ${EVENT_TIMEOUT_MS} ms`));
    }, EVENT_TIMEOUT_MS);
    const on = (e: ServeEvent) => {
      if (e.event !== name) return;
      clearTimeout(timer);
      sup.off('event', on);
      resolve(e);
    };
    sup.on('event', on);
  });
}

/** Reads edu's ident until `until` settles; every read must answer. Returns how many did. */
async function eduAnswersUntil(until: Promise<unknown>): Promise<number> {
  let settled = false;
  void until.then(
    () => (settled = true),
    () => (settled = true),
  );
  let reads = 0;
  do {
    assert.is(await edu.client.read32(0, 0), EDU_IDENT, 'edu answers');
    reads++;
  } while (!settled);
  return reads;
}

/** Device stats once `done` holds; each poll is a control-plane round trip to the worker. */
async function statsWhen(
  s: Served,
  done: (st: DeviceRunStats) => boolean,
): Promise<DeviceRunStats> {
  for (let i = 0; i < 10_000; i++) {
    const st = await s.sup.stats();
    if (st && done(st)) return st;
  }
  throw new Error(`${s.sup.spec.name}: the expected stats never came`);
}

async function assertEduUntouched(): Promise<void> {
  assert.is(await edu.client.read32(0, 0), EDU_IDENT);
  assert.is(await edu.client.read32(0, 4), 0xedcba987, 'edu kept its state');
  const st = await edu.sup.stats();
  assert.is(st?.device.fences, 0);
  assert.is(st?.watchdogRestarts, 0);
  assert.not.ok(edu.events.some((e) => e.event === 'watchdog-overrun' || e.event === 'restarted'));
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfiobox-hostile-'));
  edu = await serve('edu', { pluginPath: pluginPath('edu'), budgetMs: undefined });
  await edu.client.write32(0, 4, 0x12345678);
});

test.after(async () => {
  await stop(edu);
  rmSync(dir, { recursive: true, force: true });
});

for (const [what, code] of [
  ['an export that spins forever', B.SPIN],
  ['a loop calling a host import (clock.now-ns) forever', B.HOST_LOOP],
] as const) {
  test(`${what} is stopped by the watchdog; the worker restarts; edu answers throughout`, async () => {
    const h = await serve('hostile');
    assert.is(await h.client.read32(0, B.OK), MAGIC);
    const overrun = nextEvent(h.sup, 'watchdog-overrun');
    const restarted = nextEvent(h.sup, 'restarted');
    // The guest's setup (here: memory decode + bus mastering) must survive the restart.
    await h.client.regionWrite(CONFIG, PCI_COMMAND, new Uint8Array([0x06, 0x00]));
    const inFlight = h.client.read32(0, code);
    const reads = await eduAnswersUntil(restarted);
    assert.ok(reads > 0);
    const o = await overrun;
    assert.is(o.budgetMs, BUDGET_MS);
    assert.ok(Number(o.ranMs) >= BUDGET_MS, `ran ${String(o.ranMs)} ms`);
    // The request in flight when the worker died is answered as a fenced read (all-ones) by
    // the surviving server core, and the SAME connection is served by the new worker.
    assert.is(await inFlight, ONES);
    assert.is((await restarted).restarts, 1);
    assert.is(await h.client.read32(0, B.OK), MAGIC);
    assert.is((await h.client.read32(CONFIG, PCI_COMMAND)) & 0xffff, 0x06, 'config space kept');
    const st = await h.sup.stats();
    assert.is(st?.watchdogRestarts, 1);
    assert.is(st?.device.fenced, false);
    await assertEduUntouched();
    await stop(h);
  });
}

test('a SET_IRQS mask survives a watchdog restart: the vector is held until unmasked', async () => {
  const h = await serve('hostile');
  const efd = new EventFd();
  try {
    let msi = (await h.client.read32(CONFIG, PCI_CAPABILITY_LIST)) & 0xfc;
    for (
      let hops = 0;
      msi !== 0 && ((await h.client.read32(CONFIG, msi)) & 0xff) !== 0x05;
      hops++
    ) {
      assert.ok(hops < 48, 'no MSI capability');
      msi = ((await h.client.read32(CONFIG, msi)) >> 8) & 0xfc;
    }
    assert.ok(msi !== 0, 'no MSI capability');
    const msiVector0 = { index: IRQ_MSI, start: 0, count: 1 };
    await h.client.setIrqs({
      ...msiVector0,
      flags: IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER,
      fds: [efd.fd],
    });
    await h.client.regionWrite(CONFIG, msi + 2, new Uint8Array([0x01, 0x00])); // MSI enable
    await h.client.write32(0, A.IRQ_RAISE, 0);
    assert.is(await efd.wait(EVENT_TIMEOUT_MS), 1n, 'an unmasked vector is signalled');
    await h.client.setIrqs({ ...msiVector0, flags: IRQ_SET_DATA_NONE | IRQ_SET_ACTION_MASK });

    const restarted = nextEvent(h.sup, 'restarted');
    const inFlight = h.client.read32(0, B.SPIN);
    await restarted;
    assert.is(await inFlight, ONES);
    await h.client.write32(0, A.IRQ_RAISE, 0);
    assert.is(await h.client.read32(0, STATUS), 0, 'the raise itself succeeded');
    assert.is(efd.read(), 0n, 'the new worker still holds the vector the client masked');
    await h.client.setIrqs({ ...msiVector0, flags: IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK });
    assert.is(await efd.wait(EVENT_TIMEOUT_MS), 1n, 'unmasking sends the held vector');
  } finally {
    efd.close();
    await stop(h);
  }
});

test('a memory bomb stops at the memory cap: fenced, all-ones, restarted; edu unaffected', async () => {
  const h = await serve('hostile', { memoryBytes: 2 * 1024 * 1024 });
  const log = nextEvent(h.sup, 'plugin-log');
  assert.is(await h.client.read32(0, B.MEMORY_BOMB), ONES, 'the access in flight reads all-ones');
  assert.is((await log).message, 'memory bomb stopped at pages=32');
  const st = await statsWhen(h, (s) => s.device.restarts === 1);
  assert.is(st.device.fences, 1);
  assert.is(st.watchdogRestarts, 0, 'a trap needs no watchdog');
  assert.is(await h.client.read32(0, B.OK), MAGIC, 'the same connection, a fresh instance');
  assert.not.ok(h.events.some((e) => e.event === 'watchdog-overrun'));
  await assertEduUntouched();
  await stop(h);
});

test('stack overflow and traps fence the device; while fenced it reads all-ones', async () => {
  const h = await serve('hostile');
  assert.is(await h.client.read32(0, B.RECURSE), ONES);
  await statsWhen(h, (s) => s.device.restarts === 1); // backoff[0] = 0 ms
  // A second fence in a row waits backoff[1] = 100 ms: reads in between are all-ones.
  await h.client.write32(0, B.TRAP, 0);
  assert.is(await h.client.read32(0, B.OK), ONES, 'fenced: all-ones');
  assert.equal([...(await h.client.regionRead(0, 0, 8))], new Array(8).fill(0xff));
  let st = await h.sup.stats();
  assert.is(st?.device.fenced, true);
  assert.is(st?.device.fences, 2);
  st = await statsWhen(h, (s) => s.device.restarts === 2);
  assert.is(st.device.fenced, false);
  assert.is(await h.client.read32(0, B.OK), MAGIC);
  assert.is(await h.client.read32(0, B.TRAP), ONES, 'a trapping read answers all-ones');
  assert.is(st.errors.EIO ?? 0, 0, 'a fence is not an error reply');
  await assertEduUntouched();
  await stop(h);
});

test('DMA outside the grant is refused and counted, in-grant DMA works; not fenced', async () => {
  const h = await serve('hostile');
  const memory = new Uint8Array(0x10000).fill(0x5a);
  await h.client.dmaMap({
    iova: 0x10000n,
    sizeBytes: 0x10000,
    flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
    memory,
  });
  await h.client.write32(0, A.DMA_READ, 0x10000);
  assert.is(await h.client.read32(0, STATUS), 0, 'inside the manifest window');
  await h.client.write32(0, A.DMA_WRITE, 0x10010);
  assert.is(await h.client.read32(0, STATUS), 0);
  assert.equal([...memory.subarray(0x10, 0x20)], new Array(16).fill(0), 'the write landed');
  await h.client.write32(0, A.DMA_READ, 0x0);
  assert.is(await h.client.read32(0, STATUS), FAILED.NOT_GRANTED);
  await h.client.write32(0, A.DMA_WRITE, 0x1fff8);
  assert.is(await h.client.read32(0, STATUS), FAILED.NOT_GRANTED);
  const st = await h.sup.stats();
  assert.is(st?.device.denied.dma, 2);
  assert.is(st?.device.fenced, false);
  assert.is(st?.device.fences, 0);
  assert.is(await h.client.read32(0, B.OK), MAGIC);
  await assertEduUntouched();
  await stop(h);
});

test('an interrupt outside the policy-narrowed grant is refused and counted', async () => {
  const policyPath = join(dir, 'policy.json');
  writeFileSync(
    policyPath,
    JSON.stringify({ plugins: { hostile: { capabilities: { irq: { vectors: [1] } } } } }),
  );
  const h = await serve('hostile', { policyPath });
  await h.client.write32(0, A.IRQ_RAISE, 0);
  assert.is(await h.client.read32(0, STATUS), FAILED.NOT_GRANTED);
  const st = await h.sup.stats();
  assert.is(st?.device.denied.irq, 1);
  assert.is(st?.device.irqs, 0);
  assert.is(st?.device.fenced, false);
  await stop(h);
});

test('a log flood is rate-limited in the worker: the excess is dropped and counted', async () => {
  const h = await serve('hostile');
  await h.client.write32(0, A.LOG_FLOOD, 1000);
  assert.is(await h.client.read32(0, STATUS), 0);
  const st = await h.sup.stats();
  const denied = st?.device.denied.log ?? 0;
  // 100 lines a second (the default), a bucket that starts full: about 100 pass.
  assert.ok(denied >= 850 && denied <= 900, `denied.log = ${denied}`);
  assert.is(st?.device.fenced, false);
  await stop(h);
  const logs = h.events.filter((e) => e.event === 'plugin-log').length;
  assert.ok(logs <= 1000 - denied, `${logs} lines reached the host`);
});

test('a DMA request over the per-call limit is refused as too-large', async () => {
  const h = await serve('hostile');
  await h.client.write32(0, A.DMA_READ_LEN, 2 * 1024 * 1024);
  assert.is(await h.client.read32(0, STATUS), FAILED.TOO_LARGE);
  const st = await h.sup.stats();
  assert.is(st?.device.fenced, false);
  assert.is(st?.device.denied.dma, undefined);
  await stop(h);
});

test('a malformed describe() is refused when the device starts; the process serves on', async () => {
  const sup = new DeviceSupervisor({
    name: 'bad',
    pluginPath: pluginPath('hostile-describe'),
    socketPath: join(dir, 'bad.sock'),
    cacheDir: CACHE_DIR,
  });
  let err: unknown;
  try {
    await sup.start();
  } catch (e) {
    err = e;
  }
  assert.instance(err, Error);
  assert.is((err as Error).name, 'PluginError');
  assert.match((err as Error).message, /invalid/);
  await sup.stop();
  await assertEduUntouched();
});

test.run();

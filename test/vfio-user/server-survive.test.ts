// SPDX-License-Identifier: MIT
// A server core survives the thread serving it: a worker stuck in a device read is terminated
// (as the watchdog does), the main thread fences the core (the read in flight is answered
// all-ones), and a new worker adopts it: the same client connection, its DMA map and IRQ
// eventfd, and what it sent while nobody served, in order. Then end to end: DeviceSupervisor
// with the hostile plugin spinning in region-read, restarted by its watchdog.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { VfioError } from '../../host/errors.js';
import type { ServeEvent } from '../../host/serve/spec.js';
import { DeviceSupervisor } from '../../host/serve/supervisor.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { CACHE_DIR, pluginPath } from '../plugins/support.js';
import {
  accessHead,
  CMD,
  dmaMapPayload,
  FLAG_REPLY,
  native,
  openFds,
  RamDevice,
  RawClient,
  setIrqsPayload,
  tempSocketPath,
  writePayload,
} from './server-fixture.js';

const test = suite('vfio-user server core surviving its thread');

/** BAR0 offset whose read never returns in server-survive-entry.ts */
const SPIN_OFFSET = 0x100;
const IRQ_MSI = 1;
const SET_IRQS_EVENTFD_TRIGGER = 0x24; // VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
const ALL_ONES = [0xff, 0xff, 0xff, 0xff];

interface Served {
  worker: Worker;
  /** the next message of the worker that has `key` (e.g. {event: 'adopt'}, {bytes}) */
  next: (key: string, value?: unknown) => Promise<Record<string, unknown>>;
}

function startWorker(path: string, adopt: boolean): Served {
  const worker = new Worker(new URL('./server-survive-entry.js', import.meta.url), {
    workerData: { path, adopt },
  });
  const inbox: Array<Record<string, unknown>> = [];
  const waiters: Array<{
    match: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }> = [];
  worker.on('message', (m: Record<string, unknown>) => {
    const i = waiters.findIndex((w) => w.match(m));
    const w = i >= 0 ? waiters.splice(i, 1)[0] : undefined;
    if (w) w.resolve(m);
    else inbox.push(m);
  });
  const next = (key: string, value?: unknown) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const match = (m: Record<string, unknown>) =>
        key in m && (value === undefined || m[key] === value);
      const i = inbox.findIndex(match);
      const m = i >= 0 ? inbox.splice(i, 1)[0] : undefined;
      if (m) resolve(m);
      else waiters.push({ match, resolve });
    });
  return { worker, next };
}

function data(reply: { payload: Uint8Array }): number[] {
  return Array.from(reply.payload.subarray(16));
}

test('a terminated worker leaves its core: the read in flight is fenced all-ones, the next worker adopts the connection', async () => {
  const { path, cleanup } = tempSocketPath();
  const fdsBefore = openFds();
  const first = startWorker(path, false);
  await first.next('event', 'listening');
  const client = new RawClient(path);
  await client.negotiate();
  await first.next('event', 'connect');

  // client memory and an IRQ eventfd, handed to the core before the restart
  const memfd = native.memfdCreate('survive', 4096);
  native.fdWrite(memfd, 0, new Uint8Array([1, 2, 3, 4]));
  const map = await client.request(CMD.DMA_MAP, dmaMapPayload(0x10000n, 0x1000n, 3), [memfd]);
  assert.is(map.flags, FLAG_REPLY);
  const efd = new native.EventFd();
  const irqs = await client.request(
    CMD.DEVICE_SET_IRQS,
    setIrqsPayload(SET_IRQS_EVENTFD_TRIGGER, IRQ_MSI, 0, 1),
    [efd.fd],
  );
  assert.is(irqs.flags, FLAG_REPLY);

  const stuck = client.regionRead(0, SPIN_OFFSET, 4);
  await first.next('event', 'spinning');
  await first.worker.terminate();
  assert.equal(native.vfioUserFence(path), {
    found: true,
    attached: false,
    answered: 'REGION_READ',
  });
  const fenced = await stuck;
  assert.is(fenced.flags, FLAG_REPLY, 'a success reply, not an error');
  assert.equal(
    Array.from(fenced.payload.subarray(0, 16)),
    Array.from(accessHead(0, SPIN_OFFSET, 4)),
  );
  assert.equal(data(fenced), ALL_ONES);
  assert.equal(native.vfioUserFence(path).answered, null, 'nothing is left in flight');

  // nobody serves the core now: a server without adopt is refused, requests wait in order
  const intruder = new VfioUserServer(new RamDevice(), { socketPath: path });
  assert.throws(
    () => intruder.listen(),
    (err: unknown) => err instanceof VfioError && err.code === 'EADDRINUSE',
  );
  const waiting = client.regionRead(0, 0x10, 4);
  client.post(CMD.REGION_WRITE, writePayload(0, 0x20, new Uint8Array([9, 8, 7, 6])));
  const readBack = client.regionRead(0, 0x20, 4);

  const second = startWorker(path, true);
  await second.next('event', 'adopt');
  const w = await waiting;
  assert.is(w.flags, FLAG_REPLY);
  assert.equal(data(w), [0, 0, 0, 0], 'a fresh device answers');
  assert.equal(data(await readBack), [9, 8, 7, 6], 'the posted write went first');

  second.worker.postMessage({ dmaRead: [0x10000n, 4] });
  assert.equal(Array.from((await second.next('bytes')).bytes as Uint8Array), [1, 2, 3, 4]);
  second.worker.postMessage({ trigger: [IRQ_MSI, 0] });
  assert.is((await second.next('triggered')).triggered, true);
  assert.is(efd.read(), 1n, 'the eventfd armed before the restart is signalled');
  second.worker.postMessage({ stats: true });
  const stats = (await second.next('stats')).stats as Record<string, unknown>;
  assert.is(stats.connects, 1, 'one connection throughout');
  assert.is(stats.disconnects, 0);
  assert.is(stats.fencedReplies, 1);
  assert.is(stats.activeDmaMaps, 1);

  second.worker.postMessage({ close: true });
  await second.next('closed');
  assert.is(await client.closed, 0);
  await second.worker.terminate();
  client.close();
  efd.close();
  native.closeFd(memfd);
  assert.not.ok(existsSync(path), 'close removed the socket file');
  assert.is(openFds(), fdsBefore, 'no fd leaked');
  cleanup();
});

test('vfioUserFence and vfioUserClose on a path without a core find nothing', () => {
  assert.equal(native.vfioUserFence('/nonexistent/vfiobox.sock'), {
    found: false,
    attached: false,
    answered: null,
  });
  assert.is(native.vfioUserClose('/nonexistent/vfiobox.sock'), false);
});

test('a core left without a successor is closed by vfioUserClose: the client sees the end', async () => {
  const { path, cleanup } = tempSocketPath();
  const w = startWorker(path, false);
  await w.next('event', 'listening');
  const client = new RawClient(path);
  await client.negotiate();
  await w.next('event', 'connect');
  await w.worker.terminate();
  assert.is(native.vfioUserClose(path), true);
  assert.is(await client.closed, 0);
  assert.not.ok(existsSync(path));
  assert.is(native.vfioUserClose(path), false, 'idempotent');
  client.close();
  cleanup();
});

test('adopt with another layout is refused with EINVAL and leaves the core alone', async () => {
  const { path, cleanup } = tempSocketPath();
  const w = startWorker(path, false);
  await w.next('event', 'listening');
  await w.worker.terminate();
  const other = new RamDevice();
  other.regions[0] = { ...other.regions[0], index: 0, sizeBytes: 8192, flags: 3, mmapAreas: [] };
  const server = new VfioUserServer(other, { socketPath: path, adopt: true });
  assert.throws(
    () => server.listen(),
    (err: unknown) => err instanceof VfioError && err.code === 'EINVAL',
  );
  assert.is(native.vfioUserFence(path).found, true);
  assert.is(native.vfioUserClose(path), true);
  cleanup();
});

test('the watchdog restart keeps the VMM connection: hostile spin reads all-ones, then the new worker answers', async () => {
  const { path, cleanup } = tempSocketPath();
  const sup = new DeviceSupervisor({
    name: 'hostile',
    pluginPath: pluginPath('hostile'),
    socketPath: path,
    budgetMs: 200,
    cacheDir: CACHE_DIR,
  });
  const events: ServeEvent[] = [];
  let restarted: () => void = () => {};
  const restart = new Promise<void>((resolve) => {
    restarted = resolve;
  });
  sup.on('event', (e: ServeEvent) => {
    events.push(e);
    if (e.event === 'adopted') restarted();
  });
  await sup.start();
  const client = await VfioUserClient.connect(path, { timeoutMs: 20_000 });
  await client.negotiate();
  assert.is(await client.read32(0, 0x00), 0x686f7374, 'the hostile magic');
  assert.is(await client.read32(0, 0x0c), 0xffffffff, 'the spinning read is fenced all-ones');
  await restart;
  assert.is(await client.read32(0, 0x00), 0x686f7374, 'the new worker answers, same connection');
  const names = events.map((e) => e.event);
  for (const name of ['watchdog-overrun', 'fenced-reply', 'restarted', 'adopted']) {
    assert.ok(names.includes(name), `event ${name}`);
  }
  assert.equal(
    events.find((e) => e.event === 'fenced-reply'),
    { event: 'fenced-reply', device: 'hostile', command: 'REGION_READ' },
  );
  assert.not.ok(names.includes('disconnect'), 'the client never disconnected');
  assert.is((await sup.stats())?.watchdogRestarts, 1);
  client.close();
  await sup.stop();
  assert.not.ok(existsSync(path));
  cleanup();
});

test.run();

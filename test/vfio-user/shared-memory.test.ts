// SPDX-License-Identifier: MIT
// Memory-backed BAR areas end to end (WIT 0.1.1): the bundled scratchpad plugin served over a
// real socket. GET_REGION_INFO of its BAR2 asks for the capability chain with a second, bigger
// argsz and carries a sealed memfd; the client mmaps the area; bytes it writes there are what
// the plugin reads through shared-memory (its SUM and WORD registers, trapped in BAR0), and
// what the plugin writes (FILL, WORD) appears in the client's mapping. REGION_READ/WRITE inside
// the area are served from the same memory without reaching the plugin; the rest of BAR2 does
// reach it. The plugin's out-of-area and out-of-bounds calls are refused, reconnecting leaks no
// fd or mapping, and a terminated worker's successor finds the same bytes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice, type PluginDeviceModel } from '../../host/device/model.js';
import { grantFromManifest } from '../../host/plugins/grants.js';
import { type LoadedPlugin, loadPlugin } from '../../host/plugins/loader.js';
import { DeviceSupervisor } from '../../host/serve/supervisor.js';
import { VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_MMAP } from '../../host/vfio/uapi.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';
import { baseline, now } from '../helpers/vu-fds.js';
import { type Running, startServer } from '../helpers/vu-server.js';
import { CACHE_DIR, pluginPath } from '../plugins/support.js';
import { native } from './server-fixture.js';

const test = suite('vfio-user memory areas (scratchpad)');

const BAR0 = 0;
const BAR2 = 2;
const PAGE = 4096;
const REG = {
  ID: 0x00,
  SUM: 0x04,
  FILL: 0x08,
  STATUS: 0x0c,
  PROBE: 0x10,
  WORD_AT: 0x14,
  WORD: 0x18,
};
/** STATUS after a refused call: 1 + the access-error case (types.wit order) */
const STATUS_OUT_OF_RANGE = 2;
const STATUS_NOT_GRANTED = 3;

let loaded: LoadedPlugin;

test.before(async () => {
  loaded = await loadPlugin(pluginPath('scratchpad'), { cacheDir: CACHE_DIR });
});

function device(grant = grantFromManifest(loaded.manifest)): PluginDeviceModel {
  return createPluginDevice({ name: 'scratchpad', plugin: loaded.compiled, grant });
}

function fnv1a(bytes: Uint8Array): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

async function read32(client: VfioUserClient, region: number, offset: number): Promise<number> {
  const bytes = await client.regionRead(region, offset, 4);
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}

async function write32(client: VfioUserClient, region: number, offset: number, value: number) {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  await client.regionWrite(region, offset, bytes);
}

/** a served scratchpad and a connected client; `use` runs with both, then everything closes */
async function served(
  use: (c: VfioUserClient, dev: PluginDeviceModel, r: Running) => Promise<void>,
) {
  const dev = device();
  const running = startServer(dev);
  const client = await running.connect();
  try {
    await use(client, dev, running);
  } finally {
    await running.hangUp(client);
    running.stop();
    dev.close();
  }
}

test('GET_REGION_INFO: a too-small argsz gets the size needed, the full one the sparse areas and a sealed fd', () =>
  served(async (client) => {
    const cmd = p.Command.DEVICE_GET_REGION_INFO;
    const small = await client.request(cmd, p.encodeRegionInfoRequest(BAR2, p.REGION_INFO_SIZE));
    assert.is(small.payload.byteLength, p.REGION_INFO_SIZE);
    assert.equal(small.fds, []); // no fd before the client can take the whole answer
    const head = p.decodeRegionInfo(small.payload);
    assert.is(head.argsz, p.REGION_INFO_SIZE + 16 + 16); // + sparse mmap header + one area
    assert.is(head.flags & VFIO_REGION_INFO_FLAG_CAPS, 0); // no chain, no CAPS (QEMU insists)
    assert.ok(head.flags & VFIO_REGION_INFO_FLAG_MMAP);
    const info = await client.regionInfo(BAR2); // asks again with that argsz
    try {
      assert.is(info.sizeBytes, 2 * PAGE);
      assert.ok(info.flags & VFIO_REGION_INFO_FLAG_MMAP);
      assert.ok(info.flags & VFIO_REGION_INFO_FLAG_CAPS);
      assert.equal(info.caps.sparseMmap, [{ offset: 0, size: PAGE }]);
      assert.type(info.fd, 'number');
      // BAR0 (registers only) stays trapped: no MMAP, no fd
      const bar0 = await client.regionInfo(BAR0);
      assert.is(bar0.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
      assert.is(bar0.fd, undefined);
    } finally {
      if (info.fd !== undefined) client.closeFd(info.fd);
    }
  }));

test("the client's mapping and the plugin's shared-memory are the same bytes, both ways", () =>
  served(async (client) => {
    const info = await client.regionInfo(BAR2);
    const map = client.mapRegionArea(info);
    try {
      assert.is(await read32(client, BAR0, REG.ID), 0x53504144);
      const page = new Uint8Array(PAGE);
      for (let i = 0; i < PAGE; i++) page[i] = (i * 7 + 3) & 0xff;
      map.write(0, page); // the guest writes its page
      assert.is(await read32(client, BAR0, REG.SUM), fnv1a(page)); // the plugin reads it
      assert.is(await read32(client, BAR0, REG.STATUS), 0);
      await write32(client, BAR0, REG.FILL, 0x40); // the plugin writes the page
      const filled = map.read(0, PAGE);
      for (const i of [0, 1, 255, 4095]) assert.is(filled[i], (0x40 + i) & 0xff);
      await write32(client, BAR0, REG.WORD_AT, 0x100);
      await write32(client, BAR0, REG.WORD, 0xdeadbeef);
      assert.equal([...map.read(0x100, 4)], [0xef, 0xbe, 0xad, 0xde]);
      map.write(0x200, new Uint8Array([1, 2, 3, 4]));
      await write32(client, BAR0, REG.WORD_AT, 0x200);
      assert.is(await read32(client, BAR0, REG.WORD), 0x04030201);
    } finally {
      map.close();
      if (info.fd !== undefined) client.closeFd(info.fd);
    }
  }));

test('REGION_READ/WRITE inside the area are served from the memory, not by the plugin', () =>
  served(async (client, dev) => {
    const info = await client.regionInfo(BAR2);
    const map = client.mapRegionArea(info);
    try {
      map.write(0x10, new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd]));
      const before = dev.stats().reads + dev.stats().writes;
      assert.equal([...(await client.regionRead(BAR2, 0x10, 4))], [0xaa, 0xbb, 0xcc, 0xdd]);
      await client.regionWrite(BAR2, 0x20, new Uint8Array([9, 8, 7, 6]));
      assert.equal([...map.read(0x20, 4)], [9, 8, 7, 6]);
      assert.is(dev.stats().reads + dev.stats().writes, before); // the model saw neither
      // past the area: the plugin's trapped registers
      assert.is(await read32(client, BAR2, PAGE + 8), 0x7a000000 | (PAGE + 8));
      assert.is(dev.stats().reads, before + 1);
      // across the area's edge: refused, as neither side can serve it whole
      const err = await client.regionRead(BAR2, PAGE - 4, 8).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.is((err as { code?: string } | undefined)?.code, 'EINVAL');
    } finally {
      map.close();
      if (info.fd !== undefined) client.closeFd(info.fd);
    }
  }));

test("the plugin's shared-memory calls outside its area or its BARs are refused, and counted", () => {
  const dev = device(); // no transport: the model's own memory, same checks
  try {
    const probe = (which: number) => {
      dev.write(BAR0, REG.PROBE, new Uint8Array([which, 0, 0, 0]));
      const out = new Uint8Array(4);
      dev.read(BAR0, REG.STATUS, out);
      return out[0];
    };
    assert.is(probe(0), STATUS_NOT_GRANTED); // BAR2 past the area
    assert.is(probe(1), STATUS_OUT_OF_RANGE); // past BAR2's end
    assert.is(probe(2), STATUS_NOT_GRANTED); // BAR0: registers, no area
    assert.is(probe(3), STATUS_NOT_GRANTED); // one byte past the area
    assert.is(dev.stats().denied['shared-memory'], 4);
    assert.is(dev.stats().fences, 0); // refusals are answers, not faults
  } finally {
    dev.close();
  }
  const ungranted = device({ ...grantFromManifest(loaded.manifest), sharedMemory: false });
  try {
    const out = new Uint8Array(4);
    ungranted.read(BAR0, REG.SUM, out);
    ungranted.read(BAR0, REG.STATUS, out);
    assert.is(out[0], STATUS_NOT_GRANTED);
  } finally {
    ungranted.close();
  }
});

test('the memory outlives a client, and reconnecting leaks no fd or mapping', async () => {
  const dev = device();
  const running = startServer(dev);
  try {
    let base = baseline();
    for (let round = 0; round < 4; round++) {
      const client = await running.connect();
      const info = await client.regionInfo(BAR2);
      const map = client.mapRegionArea(info);
      // what the last client left is still there (a disconnect resets the plugin, not memory)
      assert.is(map.read(0, 1)[0], round === 0 ? 0 : round - 1);
      map.write(0, new Uint8Array([round]));
      map.close();
      if (info.fd !== undefined) client.closeFd(info.fd);
      await running.hangUp(client);
      // round 0 warms up (fds the earlier tests left closing, lazily opened ones)
      if (round === 0) base = baseline();
      else assert.equal(now(), base);
    }
    // closing the server closes the memory's fd and unmaps it there and then, not when the
    // server object is collected (a later leak check would see it go)
    const open = now();
    running.stop();
    // hangUp resumed us from the server's disconnect callback: the close completes when that
    // callback returns, which one turn of the loop guarantees
    await new Promise(setImmediate);
    const after = now();
    assert.equal(after, { fds: open.fds - 2, memfdMaps: open.memfdMaps - 1 }, 'listen fd, memfd');
  } finally {
    running.stop();
    dev.close();
  }
});

test('served as `vfiobox serve` does (worker, watchdog heartbeat): the same region fd and memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vu-mem-'));
  const socketPath = join(dir, 'sp.sock');
  const sup = new DeviceSupervisor({
    name: 'scratchpad',
    pluginPath: pluginPath('scratchpad'),
    socketPath,
    cacheDir: CACHE_DIR,
  });
  await sup.start();
  const client = await VfioUserClient.connect(socketPath);
  let info: Awaited<ReturnType<VfioUserClient['regionInfo']>> | undefined;
  try {
    await client.negotiate();
    info = await client.regionInfo(BAR2);
    assert.equal(info.caps.sparseMmap, [{ offset: 0, size: PAGE }]);
    const map = client.mapRegionArea(info);
    map.write(0, new Uint8Array([5, 6, 7, 8]));
    await write32(client, BAR0, REG.WORD_AT, 0);
    assert.is(await read32(client, BAR0, REG.WORD), 0x08070605);
    map.close();
  } finally {
    if (info?.fd !== undefined) client.closeFd(info.fd);
    client.close();
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** a worker serving scratchpad on `path`; resolves once it posted {event: first} */
function worker(path: string, adopt: boolean, first: string): Promise<Worker> {
  const w = new Worker(new URL('./shared-memory-worker-entry.js', import.meta.url), {
    workerData: { path, adopt },
  });
  return new Promise((resolve, reject) => {
    w.on('message', (m: { event?: string }) => {
      if (m.event === first) resolve(w);
    });
    w.once('error', reject);
  });
}

test('a worker terminated as the watchdog does leaves the memory: the next plugin sees the same bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vu-mem-'));
  const path = join(dir, 'sp.sock');
  const first = await worker(path, false, 'listening');
  const client = await VfioUserClient.connect(path);
  let info: Awaited<ReturnType<VfioUserClient['regionInfo']>> | undefined;
  let second: Worker | undefined;
  try {
    await client.negotiate();
    info = await client.regionInfo(BAR2);
    const map = client.mapRegionArea(info);
    await write32(client, BAR0, REG.FILL, 0x11); // the first plugin writes the page
    map.write(0x40, new Uint8Array([0xc0, 0xff, 0xee, 0x00])); // and the guest a word
    const page = map.read(0, PAGE);
    await first.terminate(); // nothing in flight: the core stays, detached
    second = await worker(path, true, 'adopt'); // a fresh plugin instance, the same connection
    assert.is(await read32(client, BAR0, REG.SUM), fnv1a(page));
    await write32(client, BAR0, REG.WORD_AT, 0x40);
    assert.is(await read32(client, BAR0, REG.WORD), 0x00eeffc0);
    map.close();
  } finally {
    if (info?.fd !== undefined) client.closeFd(info.fd);
    client.close();
    await second?.terminate();
    await first.terminate();
    native.vfioUserClose(path); // the core the last worker left
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

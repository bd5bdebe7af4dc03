// SPDX-License-Identifier: MIT
// The csum plugin (plugins/c/csum): a checksum engine that reads the guest's buffer through a
// DMA window where the host offers one and with dma.read elsewhere. Checked here, served to the
// TS client: the result is right both ways; a reused buffer keeps its window (HITS), and the
// window is the guest's memory, not a copy made at the map; after the client unmaps and maps
// the memory again the plugin maps its window again (the "map again: busy" idiom of
// docs/plugins.md); a new buffer moves the window; v8 and an unsealed memfd copy instead; and
// bad lengths or unmapped buffers are STATUS errors, not faults.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice, type PluginDeviceModel } from '../../host/device/model.js';
import type { EngineName } from '../../host/plugins/engine.js';
import { grantFromManifest } from '../../host/plugins/grants.js';
import { loadPlugin } from '../../host/plugins/loader.js';
import { DMA_FLAG_READ, DMA_FLAG_WRITE } from '../../host/vfio-user/protocol.js';
import { type ServedWithMemory, serveWithMemory } from '../helpers/vu-server.js';
import { cacheDirOf, pluginPath } from '../plugins/support.js';

const test = suite('csum plugin: DMA window or dma.read');

// plugins/c/csum/src/csum.c
const R = {
  id: 0x00,
  addrLo: 0x08,
  addrHi: 0x0c,
  len: 0x10,
  go: 0x14,
  result: 0x18,
  status: 0x1c,
  hits: 0x20,
  maps: 0x24,
  copies: 0x28,
  mode: 0x2c,
} as const;
const GUEST_BYTES = 0x100000;
const IOVA = 0x40000000n;

function fnv1a(bytes: Uint8Array): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

type Served = ServedWithMemory<PluginDeviceModel>;

async function serve(engine: EngineName, opts: { seal?: boolean } = {}): Promise<Served> {
  const loaded = await loadPlugin(pluginPath('csum'), { engine, cacheDir: cacheDirOf(engine) });
  const model = createPluginDevice({
    name: 'csum',
    plugin: loaded.compiled,
    grant: grantFromManifest(loaded.manifest),
  });
  return serveWithMemory(model, { bytes: GUEST_BYTES, iova: IOVA, seal: opts.seal ?? true });
}

/** fills [at, at + len) of guest memory with bytes from `seed` and returns them */
function fill(s: Served, at: number, len: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) bytes[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  s.mem.write(at, bytes);
  return bytes;
}

/** one command over guest [at, at + len): [STATUS, RESULT] */
async function go(s: Served, at: bigint, len: number): Promise<[number, number]> {
  await s.client.write32(0, R.addrLo, Number(at & 0xffffffffn));
  await s.client.write32(0, R.addrHi, Number(at >> 32n));
  await s.client.write32(0, R.len, len);
  await s.client.write32(0, R.go, 1);
  return [await s.client.read32(0, R.status), await s.client.read32(0, R.result)];
}

async function counters(s: Served): Promise<{ hits: number; maps: number; copies: number }> {
  return {
    hits: await s.client.read32(0, R.hits),
    maps: await s.client.read32(0, R.maps),
    copies: await s.client.read32(0, R.copies),
  };
}

test('wasmtime, sealed memory: one window for a reused buffer, and it is the live guest memory', async () => {
  const s = await serve('wasmtime');
  try {
    assert.is(await s.client.read32(0, R.id), 0x4d555343);
    let data = fill(s, 0x1234, 40000, 1); // not page-aligned, over 10 pages
    assert.equal(await go(s, IOVA + 0x1234n, 40000), [0, fnv1a(data)]);
    assert.equal(await go(s, IOVA + 0x1234n, 40000), [0, fnv1a(data)]);
    data = fill(s, 0x1234, 40000, 2); // the guest rewrites its buffer after the map
    assert.equal(await go(s, IOVA + 0x1234n, 40000), [0, fnv1a(data)], 'not a stale copy');
    // a shorter buffer inside the window uses it too
    assert.equal(await go(s, IOVA + 0x2000n, 100), [
      0,
      fnv1a(data.subarray(0x2000 - 0x1234, 0x2000 - 0x1234 + 100)),
    ]);
    assert.equal(await counters(s), { hits: 3, maps: 1, copies: 0 });
    assert.is(s.run.server.stats().directWindowsMapped, 1);
  } finally {
    await s.done();
  }
});

test('the client unmaps and maps its memory again: the plugin notices and maps its window again', async () => {
  const s = await serve('wasmtime');
  try {
    const data = fill(s, 0x8000, 4096, 3);
    assert.equal(await go(s, IOVA + 0x8000n, 4096), [0, fnv1a(data)]);
    await s.client.dmaUnmap({ iova: IOVA, sizeBytes: GUEST_BYTES });
    assert.equal(await go(s, IOVA + 0x8000n, 4096), [1, fnv1a(data)], 'unmapped: a DMA error');
    const flags = DMA_FLAG_READ | DMA_FLAG_WRITE;
    await s.client.dmaMap({ iova: IOVA, sizeBytes: GUEST_BYTES, flags, fd: s.mem.fd });
    const again = fill(s, 0x8000, 4096, 4);
    assert.equal(await go(s, IOVA + 0x8000n, 4096), [0, fnv1a(again)]);
    assert.equal(await counters(s), { hits: 0, maps: 2, copies: 0 });
    // a disconnect resets the device (reset() unmaps, counters clear): the next client's
    // memory gets a window of its own
    await s.run.hangUp(s.client);
    s.client = await s.run.connect();
    await s.client.dmaMap({ iova: IOVA, sizeBytes: GUEST_BYTES, flags, fd: s.mem.fd });
    assert.equal(await go(s, IOVA + 0x8000n, 4096), [0, fnv1a(again)]);
    assert.equal(await counters(s), { hits: 0, maps: 1, copies: 0 });
    assert.is(s.run.server.stats().directWindowsMapped, 3);
  } finally {
    await s.done();
  }
});

test('a buffer outside the window moves it; MODE 1 always copies', async () => {
  const s = await serve('wasmtime');
  try {
    const a = fill(s, 0x10000, 8192, 5);
    const b = fill(s, 0x80000, 65536, 6);
    assert.equal(await go(s, IOVA + 0x10000n, 8192), [0, fnv1a(a)]);
    assert.equal(await go(s, IOVA + 0x80000n, 65536), [0, fnv1a(b)]);
    assert.equal(await counters(s), { hits: 0, maps: 2, copies: 0 });
    await s.client.write32(0, R.mode, 1);
    assert.equal(await go(s, IOVA + 0x80000n, 65536), [0, fnv1a(b)]);
    assert.equal(await counters(s), { hits: 0, maps: 2, copies: 1 });
  } finally {
    await s.done();
  }
});

test('where there are no windows (v8, memory the client could shrink) the same results come from dma.read', async () => {
  for (const [engine, seal] of [
    ['v8', true],
    ['wasmtime', false],
  ] as const) {
    const s = await serve(engine, { seal });
    try {
      const data = fill(s, 0x3000, 20000, 7);
      for (let i = 0; i < 3; i++) {
        assert.equal(await go(s, IOVA + 0x3000n, 20000), [0, fnv1a(data)], engine);
      }
      assert.equal(await counters(s), { hits: 0, maps: 0, copies: 3 }, `${engine} seal ${seal}`);
    } finally {
      await s.done();
    }
  }
});

test('bad lengths and buffers the client never mapped are STATUS errors; the device keeps working', async () => {
  const s = await serve('wasmtime');
  try {
    assert.is((await go(s, IOVA, 0))[0], 2);
    assert.is((await go(s, IOVA, 65537))[0], 2);
    assert.is((await go(s, 0x1000n, 64))[0], 1, 'below the map');
    assert.is((await go(s, IOVA + BigInt(GUEST_BYTES) - 16n, 64))[0], 1, 'runs past the map');
    assert.is((await go(s, 0xfffffffffffff000n, 0x2000))[0], 1, 'wraps');
    const data = fill(s, 0, 64, 8);
    assert.equal(await go(s, IOVA, 64), [0, fnv1a(data)]);
    assert.is(s.model.stats().fenced, false);
  } finally {
    await s.done();
  }
});

test.run();

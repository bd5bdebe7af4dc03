// SPDX-License-Identifier: MIT
// DMA windows (WIT 0.1.2 dma.map-window / unmap-window; native/src/wasm/windows.cc): a served
// wasmtime plugin maps granted client memory over its own linear memory, and its plain loads
// and stores then reach the guest with no host call. Checked here: both directions, the
// private (not writable) window, every refusal with its error, the client unmapping or
// disconnecting under a live window (the range reads zeros, nothing faults), memory the client
// could shrink (unsupported), the V8 engine (unsupported), the server's cap of 64 memfds kept for
// windows (kMaxWindowFds), and that no fd is left behind.
import { readdirSync, readlinkSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice, type PluginDeviceModel } from '../../host/device/model.js';
import { GRANT_ALL } from '../../host/harness/harness.js';
import type { CompiledPlugin } from '../../host/plugins/engine.js';
import { engineByName } from '../../host/plugins/engines/index.js';
import type { Grant } from '../../host/plugins/grants.js';
import { dma } from '../../host/vfio-user/client.js';
import { DMA_FLAG_READ, DMA_FLAG_WRITE } from '../../host/vfio-user/protocol.js';
import { failedWith, HOSTILE } from '../helpers/hostile.js';
import { type ServedWithMemory, serveWithMemory } from '../helpers/vu-server.js';
import { cacheDirOf, pluginBytes } from '../plugins/support.js';

const test = suite('vfio-user DMA windows');

const RW = DMA_FLAG_READ | DMA_FLAG_WRITE;
const GUEST_BYTES = 0x40000; // client memory at IOVA 0
const H = HOSTILE;
/** STATUS after map-window / unmap-window answered err(code) */
const E = {
  notMapped: failedWith('window-error', 'not-mapped'),
  notGranted: failedWith('window-error', 'not-granted'),
  invalidRange: failedWith('window-error', 'invalid-range'),
  busy: failedWith('window-error', 'busy'),
  tooMany: failedWith('window-error', 'too-many'),
  unsupported: failedWith('window-error', 'unsupported'),
} as const;
const WRITABLE = 1;
const UNALIGNED = 2;

/** rw at [0x10000, 0x20000), read-only at [0x20000, 0x24000) */
const GRANT: Grant = {
  ...GRANT_ALL,
  dma: [
    { iova: 0x10000n, sizeBytes: 0x10000n, access: 'rw' },
    { iova: 0x20000n, sizeBytes: 0x4000n, access: 'r' },
  ],
};

type Served = ServedWithMemory<PluginDeviceModel>;

const compiled = new Map<string, Promise<CompiledPlugin>>();

/** hostile, compiled once per engine (a wasmtime module holds its memory image's memfd) */
function hostile(engine: 'v8' | 'wasmtime'): Promise<CompiledPlugin> {
  let plugin = compiled.get(engine);
  if (!plugin) {
    plugin = engineByName(engine).compile(pluginBytes('hostile'), {
      cacheDir: cacheDirOf(engine),
      name: 'hostile',
    });
    compiled.set(engine, plugin);
  }
  return plugin;
}

async function serve(
  engine: 'v8' | 'wasmtime',
  opts: { seal?: boolean; grant?: Grant } = {},
): Promise<Served> {
  const plugin = await hostile(engine);
  const model = createPluginDevice({ name: 'hostile', plugin, grant: opts.grant ?? GRANT });
  return serveWithMemory(model, { bytes: GUEST_BYTES, seal: opts.seal ?? true });
}

/** map-window(iova, value's length, the buffer, value's flags): the status register after */
async function map(s: Served, iova: number, value: number): Promise<number> {
  await s.client.write32(0, H.windowIova, iova);
  await s.client.write32(0, H.map, value);
  return s.client.read32(0, H.status);
}

async function unmap(s: Served, offset = 0): Promise<number> {
  await s.client.write32(0, H.unmap, offset);
  return s.client.read32(0, H.status);
}

/** the plugin's own load of the u32 at its window buffer + offset */
async function load(s: Served, offset: number): Promise<number> {
  await s.client.write32(0, H.offset, offset);
  return s.client.read32(0, H.word);
}

/** the plugin's own store to its window buffer + offset */
async function store(s: Served, offset: number, value: number): Promise<void> {
  await s.client.write32(0, H.offset, offset);
  await s.client.write32(0, H.word, value);
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function guestU32(s: Served, at: number): number {
  return new DataView(s.mem.read(at, 4).buffer).getUint32(0, true);
}

function windowStats(s: Served): { mapped: number; refused: number } {
  const st = s.run.server.stats();
  return { mapped: st.directWindowsMapped, refused: st.directWindowsRefused };
}

test('a writable window: the plugin loads what the guest wrote after the map, and its stores land in guest memory', async () => {
  const s = await serve('wasmtime');
  try {
    s.mem.write(0x10000, u32(0x11111111));
    assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
    assert.is(await load(s, 0), 0x11111111, 'what was there at the map');
    s.mem.write(0x12ffc, u32(0xcafef00d));
    assert.is(await load(s, 0x2ffc), 0xcafef00d, 'the same pages, not a copy');
    await store(s, 0x3000, 0x5eed5eed);
    assert.is(guestU32(s, 0x13000), 0x5eed5eed, 'the store reached the guest');
    assert.is(await unmap(s), 0);
    assert.is(await load(s, 0x2ffc), 0, 'an unmapped window reads zeros');
    assert.is(guestU32(s, 0x12ffc), 0xcafef00d, 'and the guest keeps its memory');
    assert.equal(windowStats(s), { mapped: 1, refused: 0 });
  } finally {
    await s.done();
  }
});

test('a window that is not writable is copy-on-write: the plugin sees the guest, the guest never sees the plugin', async () => {
  const s = await serve('wasmtime');
  try {
    s.mem.write(0x20000, u32(0x0badf00d));
    s.mem.write(0x20010, u32(0x600d600d));
    assert.is(await map(s, 0x20000, 0x4000), 0, 'a read-only grant gives a read-only window');
    await store(s, 0, 0x12345678);
    assert.is(await load(s, 0), 0x12345678, 'the plugin reads its own store back');
    assert.is(guestU32(s, 0x20000), 0x0badf00d, 'the guest memory is untouched');
    assert.is(await load(s, 0x10), 0x600d600d);
    assert.is(await unmap(s), 0);
    assert.is(await map(s, 0x20000, 0x4000 | WRITABLE), E.notGranted, 'not for write');
  } finally {
    await s.done();
  }
});

test('refusals: each with its window-error, and the plugin memory as it was', async () => {
  const s = await serve('wasmtime');
  try {
    assert.is(await map(s, 0x30000, 0x1000), E.notGranted, 'mapped, not granted');
    assert.is(await map(s, 0x1f000, 0x2000), E.notGranted, 'crosses the grant');
    assert.is(await map(s, 0x10008, 0x1000), E.invalidRange, 'unaligned iova');
    assert.is(await map(s, 0x10000, 0x1000 | UNALIGNED), E.invalidRange, 'unaligned at');
    assert.is(await map(s, 0x10000, 0), E.invalidRange, 'empty');
    assert.is(await unmap(s), E.invalidRange, 'no window there');
    assert.is(await map(s, 0x10000, 0x2000 | WRITABLE), 0);
    assert.is(await map(s, 0x14000, 0x1000 | WRITABLE), E.busy, 'over a window');
    assert.is(await unmap(s, 0x1000), E.invalidRange, 'not where a window starts');
    assert.is(await unmap(s), 0);
    assert.equal(windowStats(s), { mapped: 1, refused: 2 });
  } finally {
    await s.done();
  }
});

test('at most 64 windows at once: the 65th is too-many, and one unmapped makes room', async () => {
  const s = await serve('wasmtime', { grant: GRANT_ALL });
  try {
    s.mem.write(63 * 4096, u32(0x63636363));
    s.mem.write(6 * 4096, u32(0x66666666));
    await s.client.write32(0, H.windowIova, 0);
    await s.client.write32(0, H.repeat, 65);
    await s.client.write32(0, H.mapPages, WRITABLE);
    assert.is(await s.client.read32(0, H.status), E.tooMany, 'the 65th');
    assert.is(await load(s, 63 * 4096), 0x63636363, 'the 64th window is the 64th page');
    assert.is(await unmap(s, 5 * 4096), 0);
    assert.is(await load(s, 5 * 4096), 0, 'the unmapped page reads zeros');
    assert.is(await load(s, 6 * 4096), 0x66666666, 'its neighbour is still a window');
    assert.is(await map(s, 0, 0x1000), E.busy, 'the buffer start is a window');
    await s.client.write32(0, H.repeat, 1);
    assert.equal(windowStats(s), { mapped: 64, refused: 0 });
  } finally {
    await s.done();
  }
});

test('the server keeps at most 64 memfds for windows: a map past that works but gets no window, and an unmap makes room', async () => {
  const s = await serve('wasmtime', { grant: GRANT_ALL }); // its map at IOVA 0 keeps fd 1 of 64
  const pages = dma.memfd(64 * 4096);
  pages.seal();
  const BASE = 0x1000000;
  const page = (i: number) => BASE + i * 4096;
  const mapPage = (i: number) =>
    s.client.dmaMap({
      iova: BigInt(page(i)),
      sizeBytes: 4096,
      flags: RW,
      fd: pages.fd,
      fdOffset: i * 4096,
    });
  try {
    for (let i = 0; i < 64; i++) {
      pages.write(i * 4096, u32(0xa0000000 + i));
      await mapPage(i); // every map is accepted; the server dups the fd of the first 63
    }
    assert.is(await map(s, page(62), 0x1000 | WRITABLE), 0, 'the 64th kept fd');
    assert.is(await load(s, 0), 0xa000003e);
    assert.is(await unmap(s), 0);
    assert.is(await map(s, page(63), 0x1000 | WRITABLE), E.unsupported, 'no fd kept');
    await s.client.dmaUnmap({ iova: BigInt(page(0)), sizeBytes: 4096 });
    assert.is(await map(s, page(63), 0x1000 | WRITABLE), E.unsupported, 'still none');
    await mapPage(0); // the unmap closed its fd: this map keeps one again
    assert.is(await map(s, page(0), 0x1000 | WRITABLE), 0, 'room again');
    assert.is(await load(s, 0), 0xa0000000);
    assert.is(await unmap(s), 0);
    assert.equal(windowStats(s), { mapped: 2, refused: 2 });
  } finally {
    await s.done();
    pages.close();
  }
});

test('granted but not mapped by the client: not-mapped', async () => {
  const model = createPluginDevice({
    name: 'hostile',
    plugin: await hostile('wasmtime'),
    grant: GRANT_ALL,
  });
  const s = await serveWithMemory(model, { bytes: 0x4000, iova: 0x100000n });
  try {
    assert.is(await map(s, 0x200000, 0x1000), E.notMapped);
    assert.is(await map(s, 0x103000, 0x2000), E.notMapped, 'runs past the map');
    assert.is(await map(s, 0x100000, 0x4000 | WRITABLE), 0, 'the whole map');
    assert.is(await unmap(s), 0);
  } finally {
    await s.done();
  }
});

test('the client unmaps the memory under a live window: the plugin reads zeros and keeps running', async () => {
  const s = await serve('wasmtime');
  try {
    s.mem.write(0x10000, u32(0xdeadbeef));
    assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
    assert.is(await load(s, 0), 0xdeadbeef);
    await s.client.dmaUnmap({ iova: 0n, sizeBytes: GUEST_BYTES });
    assert.is(await load(s, 0), 0, 'the window went with the map');
    await store(s, 0, 0x77777777);
    assert.is(guestU32(s, 0x10000), 0xdeadbeef, 'a store after the unmap stays in the plugin');
    assert.is(await unmap(s), E.invalidRange, 'the window is gone');
    assert.is(s.model.stats().fenced, false);
    // mapped again, a window works again
    await s.client.dmaMap({ iova: 0n, sizeBytes: GUEST_BYTES, flags: RW, fd: s.mem.fd });
    assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
    assert.is(await load(s, 0), 0xdeadbeef);
  } finally {
    await s.done();
  }
});

test('a disconnect drops the windows; the next client starts with none', async () => {
  const s = await serve('wasmtime');
  try {
    s.mem.write(0x10000, u32(0x42424242));
    assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
    await s.run.hangUp(s.client);
    s.client = await s.run.connect();
    await s.client.dmaMap({ iova: 0n, sizeBytes: GUEST_BYTES, flags: RW, fd: s.mem.fd });
    assert.is(await unmap(s), E.invalidRange, 'no window survived the disconnect');
    assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
    assert.is(await load(s, 0), 0x42424242);
  } finally {
    await s.done();
  }
});

test('memory the client can shrink (no F_SEAL_SHRINK) gets no window: unsupported', async () => {
  const s = await serve('wasmtime', { seal: false });
  try {
    assert.is(await map(s, 0x10000, 0x1000 | WRITABLE), E.unsupported);
    assert.equal(windowStats(s), { mapped: 0, refused: 1 });
  } finally {
    await s.done();
  }
});

test('on v8 there are no windows: unsupported, and the plugin carries on', async () => {
  const s = await serve('v8');
  try {
    assert.is(await map(s, 0x10000, 0x1000 | WRITABLE), E.unsupported);
    assert.is(await unmap(s), E.unsupported);
    assert.is(s.model.stats().fenced, false);
  } finally {
    await s.done();
  }
});

test('windows leave no fd behind: the kept memfd closes with its map', async () => {
  /** fds of this process on guest memory (dma.memfd's name) */
  const guestFds = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:vfiobox-guest');
      } catch {
        return false; // readdir's own fd, gone by now
      }
    }).length;
  const before = guestFds();
  const s = await serve('wasmtime');
  assert.is(await map(s, 0x10000, 0x4000 | WRITABLE), 0);
  assert.is(guestFds(), before + 2, "the client's memfd and the server's copy kept for windows");
  await s.client.dmaUnmap({ iova: 0n, sizeBytes: GUEST_BYTES });
  assert.is(guestFds(), before + 1, 'the unmap closed the copy');
  await s.done();
  assert.is(guestFds(), before);
});

test.run();

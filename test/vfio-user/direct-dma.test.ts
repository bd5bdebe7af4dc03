// SPDX-License-Identifier: MIT
// The direct route's DMA port (native/src/js/vfio_user_direct.cc DirectDmaPort): a served
// wasmtime plugin's dma.read/dma.write of mmapped client memory inside its grant copy in the
// native server, with no JS; everything else (outside the grant, a read-only window written,
// over the per-call limit, unmapped) is declined to the grant-checked JS chain, which refuses
// it with the same errors and counts it in the model's `denied`, as without the port. With the
// V8 engine there is no port and the same calls work the JS way.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice, type PluginDeviceModel } from '../../host/device/model.js';
import { GRANT_ALL } from '../../host/harness/harness.js';
import type { CompiledPlugin } from '../../host/plugins/engine.js';
import { engineByName } from '../../host/plugins/engines/index.js';
import type { Grant } from '../../host/plugins/grants.js';
import type { VfioUserClient } from '../../host/vfio-user/client.js';
import { EDU } from '../helpers/edu.js';
import { failedWith, HOSTILE } from '../helpers/hostile.js';
import { type ServedWithMemory, serveWithMemory } from '../helpers/vu-server.js';
import { cacheDirOf, pluginBytes } from '../plugins/support.js';

const test = suite('vfio-user direct DMA port');

const GUEST_BYTES = 0x40000; // client memory at IOVA 0
const H = HOSTILE;
const NOT_MAPPED = failedWith('dma-error', 'not-mapped');
const NOT_GRANTED = failedWith('dma-error', 'not-granted');
const TOO_LARGE = failedWith('dma-error', 'too-large');

/** rw at [0x10000, 0x20000), read-only at [0x20000, 0x21000) */
const WINDOWS: Grant = {
  ...GRANT_ALL,
  dma: [
    { iova: 0x10000n, sizeBytes: 0x10000n, access: 'rw' },
    { iova: 0x20000n, sizeBytes: 0x1000n, access: 'r' },
  ],
};

async function compile(engine: 'v8' | 'wasmtime', name: string): Promise<CompiledPlugin> {
  return engineByName(engine).compile(pluginBytes(name), { cacheDir: cacheDirOf(engine), name });
}

interface Served extends ServedWithMemory<PluginDeviceModel> {
  /** the server's DMA port counters */
  port(): { reads: number; writes: number; declined: number };
}

/** the client's memory is not sealed: the port's copies take the SIGBUS-guarded path */
async function serve(engine: 'v8' | 'wasmtime', name: string, grant: Grant): Promise<Served> {
  const plugin = await compile(engine, name);
  const model = createPluginDevice({ name, plugin, grant, restartBackoffMs: [0] });
  const served = await serveWithMemory(model, { bytes: GUEST_BYTES, seal: false });
  return Object.assign(served, {
    port() {
      const s = served.run.server.stats();
      return { reads: s.directDmaReads, writes: s.directDmaWrites, declined: s.directDmaDeclined };
    },
  });
}

/** one hostile action (a region-write), then its status register */
async function act(s: Served, offset: number, value: number): Promise<number> {
  await s.client.write32(0, offset, value);
  return s.client.read32(0, H.status);
}

async function write64(c: VfioUserClient, offset: number, value: bigint): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  await c.regionWrite(0, offset, b);
}

/** one edu DMA command, polled (bounded) until its run bit clears */
async function eduDma(c: VfioUserClient, src: bigint, dst: bigint, count: number, cmd: number) {
  await write64(c, EDU.DMA_SRC, src);
  await write64(c, EDU.DMA_DST, dst);
  await write64(c, EDU.DMA_CNT, BigInt(count));
  await write64(c, EDU.DMA_CMD, BigInt(cmd | EDU.DMA_RUN));
  for (let i = 0; i < 100_000; i++) {
    if (((await c.read32(0, EDU.DMA_CMD)) & EDU.DMA_RUN) === 0) return;
  }
  assert.unreachable('the edu DMA never completed');
}

test('edu on wasmtime: its DMA commands copy through the port, both ways, byte for byte', async () => {
  const s = await serve('wasmtime', 'edu', GRANT_ALL);
  try {
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => (i * 29 + 7) & 0xff);
    s.mem.write(0x1000, pattern);
    await eduDma(s.client, 0x1000n, EDU.BUF_ADDR, 4096, 0); // RAM -> edu
    await eduDma(s.client, EDU.BUF_ADDR, 0x3000n, 4096, EDU.DMA_TO_RAM); // edu -> RAM
    assert.equal([...s.mem.read(0x3000, 4096)], [...pattern]);
    assert.equal(s.port(), { reads: 1, writes: 1, declined: 0 });
    assert.equal(s.model.stats().denied, {});
  } finally {
    await s.done();
  }
});

test('one export making many DMA calls: each is one port copy', async () => {
  const s = await serve('wasmtime', 'hostile', GRANT_ALL);
  try {
    await s.client.write32(0, H.repeat, 16);
    await s.client.write32(0, H.stride, 0x1000);
    assert.is(await act(s, H.readLen, 4096), 0);
    assert.equal(s.port(), { reads: 16, writes: 0, declined: 0 });
    // the 17th page is past the client's memory: the first 16 copy, the last is declined and
    // the JS chain answers not-mapped
    await s.client.write32(0, H.repeat, 0x41);
    assert.is(await act(s, H.readLen, 4096), NOT_MAPPED);
    assert.equal(s.port(), { reads: 16 + 0x40, writes: 0, declined: 1 });
  } finally {
    await s.done();
  }
});

test('a dma.read larger than the free heap: cabi_realloc grows the memory inside the import, and the port still copies', async () => {
  const s = await serve('wasmtime', 'hostile', GRANT_ALL);
  try {
    // the fresh instance's memory is smaller than this: the result's block lies past the
    // memory the import first saw, which the port must look up again, not refuse
    assert.is(await act(s, H.readLen, GUEST_BYTES), 0);
    assert.is(await act(s, H.readLen, GUEST_BYTES), 0, 'and again, now inside the grown memory');
    assert.equal(s.port(), { reads: 2, writes: 0, declined: 0 });
    assert.is(s.model.stats().fenced, false);
  } finally {
    await s.done();
  }
});

test('outside its grant the port declines; the grant refuses, with the same errors and counts', async () => {
  const s = await serve('wasmtime', 'hostile', WINDOWS);
  try {
    assert.is(await act(s, H.read16, 0x10000), 0);
    assert.is(await act(s, H.read16, 0x1fff0), 0, 'the last 16 bytes of the window');
    assert.is(await act(s, H.write16, 0x18000), 0);
    assert.is(await act(s, H.read16, 0x20000), 0, 'the read-only window reads');
    assert.equal(s.port(), { reads: 3, writes: 1, declined: 0 });

    assert.is(await act(s, H.read16, 0x30000), NOT_GRANTED, 'mapped, not granted');
    assert.is(await act(s, H.read16, 0xfff8), NOT_GRANTED, 'starts before');
    assert.is(await act(s, H.write16, 0x1fff8), NOT_GRANTED, 'crosses the end');
    assert.is(await act(s, H.write16, 0x20000), NOT_GRANTED, 'read-only window');
    assert.is(await act(s, H.readLen, 0x200000), TOO_LARGE, 'over 1 MiB');
    assert.equal(s.port(), { reads: 3, writes: 1, declined: 5 });
    assert.is(s.model.stats().denied.dma, 4, 'every refusal counted once, by the grant');

    await s.client.dmaUnmap({ iova: 0n, sizeBytes: GUEST_BYTES });
    assert.is(await act(s, H.read16, 0x10000), NOT_MAPPED, 'granted, not mapped');
    assert.equal(s.port(), { reads: 3, writes: 1, declined: 6 });
  } finally {
    await s.done();
  }
});

test('after a fence and restart the new instance gets the port', async () => {
  const s = await serve('wasmtime', 'hostile', GRANT_ALL);
  try {
    assert.is(await act(s, H.read16, 0), 0);
    assert.is(await s.client.read32(0, H.trap), 0xffffffff, 'the trap fences');
    for (let i = 0; i < 1000 && s.model.stats().fenced; i++) {
      await new Promise((r) => setImmediate(r));
    }
    assert.is(s.model.stats().fenced, false, 'the plugin was restarted');
    assert.is(await act(s, H.read16, 0), 0);
    assert.equal(s.port(), { reads: 2, writes: 0, declined: 0 });
  } finally {
    await s.done();
  }
});

test('hostile on v8: no port; the same calls go the JS way', async () => {
  const s = await serve('v8', 'hostile', WINDOWS);
  try {
    assert.is(await act(s, H.read16, 0x10000), 0);
    assert.is(await act(s, H.read16, 0x30000), NOT_GRANTED);
    assert.equal(s.port(), { reads: 0, writes: 0, declined: 0 });
    assert.is(s.model.stats().denied.dma, 1);
  } finally {
    await s.done();
  }
});

test.run();

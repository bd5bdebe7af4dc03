// SPDX-License-Identifier: MIT
// The server's one-copy DMA (DmaSpace.readInto/writeFrom, what the V8 engine's dma lowering
// calls): bytes go between the client's memfd and the plugin's memory with no copy in between,
// the range is checked before the plugin allocates, and the target memory is bounds-checked.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DmaSpace } from '../../host/device/types.js';
import { WitError } from '../../host/plugins/engine.js';
import { dma as guest } from '../../host/vfio-user/client.js';
import { DMA_FLAG_READ, DMA_FLAG_WRITE } from '../../host/vfio-user/protocol.js';
import { startServer } from '../helpers/vu-server.js';
import { RamDevice } from './server-fixture.js';

const test = suite('vfio-user server one-copy DMA');

const IOVA = 0x100000n;
const RO_IOVA = 0x200000n;
const BYTES = 0x4000;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof WitError) return err.code;
    throw err;
  }
  return 'returned';
}

test('readInto and writeFrom copy between client memory and the target, checked first', async () => {
  const device = new RamDevice();
  const srv = startServer(device);
  const mem = guest.memfd(BYTES);
  const ro = guest.memfd(0x1000);
  try {
    const c = await srv.connect();
    await c.dmaMap({
      iova: IOVA,
      sizeBytes: BYTES,
      flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
      fd: mem.fd,
    });
    await c.dmaMap({ iova: RO_IOVA, sizeBytes: 0x1000, flags: DMA_FLAG_READ, fd: ro.fd });
    const pattern = Uint8Array.from({ length: 0x2000 }, (_, i) => (i * 5 + 3) & 0xff);
    mem.write(0x1000, pattern);
    const space = device.io?.dma as DmaSpace;
    const { readInto, writeFrom } = space;
    if (!readInto || !writeFrom) throw new Error('the server offers the one-copy paths');
    const memory = new ArrayBuffer(0x10000);
    let allocs = 0;
    let next = 0x100;
    const target = {
      alloc(len: number) {
        allocs++;
        const at = next;
        next += len;
        return at;
      },
      memory: () => memory,
    };

    assert.is(
      codeOf(() => readInto(0x300000n, 16, target)),
      'not-mapped',
    );
    assert.is(
      codeOf(() => readInto(IOVA + 0x3ff8n, 16, target)),
      'not-mapped',
      'runs past',
    );
    assert.is(allocs, 0, 'nothing allocated for a range that cannot be copied');

    const at = readInto(IOVA + 0x1000n, pattern.length, target);
    assert.is(at, 0x100);
    assert.is(allocs, 1);
    assert.equal([...new Uint8Array(memory, at, pattern.length)], [...pattern]);

    writeFrom(IOVA + 0x3000n, memory, at, 0x800);
    assert.equal([...mem.read(0x3000, 0x800)], [...pattern.subarray(0, 0x800)]);
    assert.is(
      codeOf(() => writeFrom(RO_IOVA, memory, 0, 4)),
      'access-denied',
    );
    assert.throws(() => writeFrom(IOVA, memory, 0xfff0, 0x20), RangeError, 'outside memory');
    next = 0xfff0; // the plugin's allocator answering with a block past its memory's end
    assert.throws(() => readInto(IOVA, 0x20, target), RangeError);
    await srv.hangUp(c);
  } finally {
    mem.close();
    ro.close();
    srv.stop();
  }
});

test.run();

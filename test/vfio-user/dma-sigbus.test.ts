// SPDX-License-Identifier: MIT
// A client that shrinks its guest memory (ftruncate of the memfd) after DMA_MAP: the device's
// next DMA from the lost range would raise SIGBUS in the server. The native core's guarded copy
// turns it into a DMA error instead: the edu plugin sees dma-error not-mapped (and logs it),
// the server counts it in dmaFaults and keeps serving, and the part still backed works.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice } from '../../host/device/model.js';
import { GRANT_ALL } from '../../host/harness/harness.js';
import { dma, type VfioUserClient } from '../../host/vfio-user/client.js';
import { DMA_FLAG_READ, DMA_FLAG_WRITE } from '../../host/vfio-user/protocol.js';
import { EDU } from '../helpers/edu.js';
import { type Running, startServer } from '../helpers/vu-server.js';
import { compiledPlugin } from '../plugins/support.js';

const test = suite('client memory shrunk under a DMA map');

const BAR0 = 0;
const GUEST_IOVA = 0x100000n;
const GUEST_BYTES = 0x10000;
const KEPT_BYTES = 0x1000;
const COUNT = 256;

async function write64(c: VfioUserClient, offset: number, value: bigint): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  await c.regionWrite(BAR0, offset, b);
}

/** Runs one edu DMA and waits (bounded by register polls) until its run bit clears. */
async function eduDma(c: VfioUserClient, src: bigint, dst: bigint, cmd: number): Promise<void> {
  await write64(c, EDU.DMA_SRC, src);
  await write64(c, EDU.DMA_DST, dst);
  await write64(c, EDU.DMA_CNT, BigInt(COUNT));
  await write64(c, EDU.DMA_CMD, BigInt(cmd | EDU.DMA_RUN));
  for (let i = 0; i < 100_000; i++) {
    if (((await c.read32(BAR0, EDU.DMA_CMD)) & EDU.DMA_RUN) === 0) return;
  }
  assert.unreachable('the edu DMA never completed');
}

test('DMA from the lost range fails as not-mapped; the server keeps serving', async () => {
  const logs: string[] = [];
  const device = createPluginDevice({
    name: 'edu',
    plugin: await compiledPlugin('edu'),
    grant: GRANT_ALL,
    log: (_level, message) => logs.push(message),
  });
  const mem = dma.memfd(GUEST_BYTES);
  let srv: Running | undefined;
  try {
    srv = startServer(device);
    const c = await srv.connect();
    const flags = DMA_FLAG_READ | DMA_FLAG_WRITE;
    await c.dmaMap({ iova: GUEST_IOVA, sizeBytes: GUEST_BYTES, flags, fd: mem.fd });
    const pattern = Uint8Array.from({ length: COUNT }, (_, i) => (i * 13 + 1) & 0xff);
    mem.write(0, pattern);
    mem.truncate(KEPT_BYTES); // the hostile part: pages behind the map go away

    const lost = GUEST_IOVA + 0x2000n;
    await eduDma(c, lost, EDU.BUF_ADDR, 0); // RAM -> edu from the lost range
    await eduDma(c, EDU.BUF_ADDR, lost, EDU.DMA_TO_RAM); // edu -> RAM into it
    const failures = logs.filter((l) => l.startsWith('edu: DMA failed'));
    assert.equal(failures, [
      `edu: DMA failed: iova, error 0x${lost.toString(16)} 0x0`, // dma-error.not-mapped = 0
      `edu: DMA failed: iova, error 0x${lost.toString(16)} 0x0`,
    ]);
    assert.is(srv.server.stats().dmaFaults, 2);
    assert.is(device.stats().fenced, false);

    // still serving, and the page still backed moves bytes both ways
    assert.is(await c.read32(BAR0, EDU.IDENT), EDU.IDENT_VALUE);
    await eduDma(c, GUEST_IOVA, EDU.BUF_ADDR, 0);
    await eduDma(c, EDU.BUF_ADDR, GUEST_IOVA + 0x800n, EDU.DMA_TO_RAM);
    assert.equal([...mem.read(0x800, COUNT)], [...pattern]);
    assert.is(srv.server.stats().dmaFaults, 2);
    await c.dmaUnmap({ iova: GUEST_IOVA, sizeBytes: GUEST_BYTES });
    await srv.hangUp(c);
  } finally {
    mem.close();
    srv?.stop();
    device.close();
  }
});

test.run();

// SPDX-License-Identifier: MIT
// VfioUserServer (host/vfio-user/server.ts) on the real addon, over a RAM-backed DeviceModel,
// driven by a raw client on VfioUserSocket.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { VfioError } from '../../host/errors.js';
import { WitError } from '../../host/plugins/engine.js';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import {
  CMD,
  dmaMapPayload,
  dmaUnmapPayload,
  E,
  FLAG_ERROR,
  FLAG_REPLY,
  isError,
  native,
  once,
  openFds,
  pack,
  RamDevice,
  RawClient,
  setIrqsPayload,
  tempSocketPath,
  view,
  writePayload,
} from './server-fixture.js';

interface Ctx {
  device: RamDevice;
  server: VfioUserServer;
  path: string;
  cleanup: () => void;
}

const test = suite<Ctx>('vfio-user server');

test.before.each((ctx) => {
  const { path, cleanup } = tempSocketPath();
  ctx.path = path;
  ctx.cleanup = cleanup;
  ctx.device = new RamDevice();
  ctx.server = new VfioUserServer(ctx.device, { socketPath: path });
  ctx.server.listen();
});

test.after.each((ctx) => {
  ctx.server.close();
  ctx.cleanup();
});

async function connected(ctx: Ctx): Promise<RawClient> {
  const client = new RawClient(ctx.path);
  await client.negotiate();
  return client;
}

test('VERSION is answered with 0.0 and the server capabilities; the device is attached', async (ctx) => {
  const client = new RawClient(ctx.path);
  const reply = await client.negotiate();
  assert.is(reply.flags, FLAG_REPLY);
  assert.is(view(reply.payload).getUint16(0, true), 0);
  assert.is(view(reply.payload).getUint16(2, true), 0);
  const text = new TextDecoder().decode(reply.payload.subarray(4));
  assert.ok(text.endsWith('\0'));
  const caps = JSON.parse(text.slice(0, -1)).capabilities;
  assert.equal(caps, {
    max_msg_fds: 16,
    max_data_xfer_size: 1048576,
    pgsizes: 4096,
    max_dma_maps: 65535,
  });
  assert.is(ctx.device.attaches, 1);
  assert.ok(ctx.server.connected);
  client.close();
});

test('a command before VERSION gets EINVAL and the connection stays usable', async (ctx) => {
  const client = new RawClient(ctx.path);
  const early = await client.request(
    CMD.DEVICE_GET_INFO,
    pack([
      ['u32', 16],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  assert.ok(isError(early, E.EINVAL));
  await client.negotiate();
  client.close();
});

test('DEVICE_GET_INFO reports PCI|RESET, 9 regions and 5 IRQ indices', async (ctx) => {
  const client = await connected(ctx);
  const reply = await client.request(
    CMD.DEVICE_GET_INFO,
    pack([
      ['u32', 16],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  const v = view(reply.payload);
  assert.equal(
    [v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true)],
    [16, 3, 9, 5],
  );
  client.close();
});

test('REGION_WRITE then REGION_READ round-trip through the device model', async (ctx) => {
  const client = await connected(ctx);
  const w = await client.regionWrite(0, 0x10, new Uint8Array([1, 2, 3, 4, 5]));
  assert.is(w.flags, FLAG_REPLY);
  assert.is(w.payload.length, 16);
  assert.equal(Array.from(ctx.device.bar0.subarray(0x10, 0x15)), [1, 2, 3, 4, 5]);
  const r = await client.regionRead(0, 0x11, 3);
  assert.equal(Array.from(r.payload.subarray(16)), [2, 3, 4]);
  assert.is(ctx.server.stats().regionReads[0], 1);
  assert.is(ctx.server.stats().regionWrites[0], 1);
  client.close();
});

test('region accesses outside the region or of absent regions get EINVAL', async (ctx) => {
  const client = await connected(ctx);
  assert.ok(isError(await client.regionRead(0, 4095, 2), E.EINVAL));
  assert.ok(isError(await client.regionRead(3, 0, 4), E.EINVAL));
  assert.ok(isError(await client.regionRead(0, 0, 0), E.EINVAL));
  assert.ok(isError(await client.regionWrite(7, 256, new Uint8Array(1)), E.EINVAL));
  assert.is(ctx.server.stats().errors.EINVAL, 4);
  client.close();
});

test('a posted write is applied in order and never answered, even when it fails', async (ctx) => {
  const client = await connected(ctx);
  client.post(CMD.REGION_WRITE, writePayload(0, 0x20, new Uint8Array([0xaa])));
  client.post(CMD.REGION_WRITE, writePayload(0, 4096, new Uint8Array([0xbb]))); // out of range
  const r = await client.regionRead(0, 0x20, 1);
  assert.equal(Array.from(r.payload.subarray(16)), [0xaa]);
  assert.equal(client.unexpected, []);
  assert.is(ctx.server.stats().postedErrors, 1);
  client.close();
});

test('a throwing device callback is answered with EIO and the server keeps serving', async (ctx) => {
  const client = await connected(ctx);
  ctx.device.throwOnRead = new Error('device bug');
  assert.ok(isError(await client.regionRead(0, 0, 4), E.EIO));
  const ok = await client.regionRead(0, 0, 4);
  assert.is(ok.flags, FLAG_REPLY);
  client.close();
});

test('unknown and unsupported commands get ENOSYS', async (ctx) => {
  const client = await connected(ctx);
  assert.ok(isError(await client.request(99, new Uint8Array(0)), E.ENOSYS));
  assert.ok(isError(await client.request(CMD.REGION_WRITE_MULTI, pack([['u64', 0n]])), E.ENOSYS));
  client.close();
});

test('a DMA_MAP with a memfd gives the device bounds-checked access to client memory', async (ctx) => {
  const client = await connected(ctx);
  const fd = native.memfdCreate('guest-ram', 0x4000);
  native.fdWrite(fd, 0x1000, new Uint8Array([9, 8, 7]));
  const mapped = once(ctx.server, 'dma-map');
  const reply = await client.request(CMD.DMA_MAP, dmaMapPayload(0x100000n, 0x2000n, 3, 0x1000n), [
    fd,
  ]);
  assert.is(reply.flags, FLAG_REPLY);
  const [event] = await mapped;
  assert.equal(event, { iova: 0x100000n, sizeBytes: 0x2000n, flags: 3, hasFd: true });
  const io = ctx.device.io;
  if (!io) throw new Error('not attached');
  assert.equal(Array.from(io.dma.read(0x100000n, 3)), [9, 8, 7]);
  io.dma.write(0x101ffen, new Uint8Array([5, 6]));
  assert.equal(Array.from(native.fdRead(fd, 0x2ffe, 2)), [5, 6]);
  assert.throws(
    () => io.dma.read(0x101fffn, 2),
    (e: unknown) => e instanceof WitError && e.code === 'not-mapped',
  );
  const overlap = await client.request(CMD.DMA_MAP, dmaMapPayload(0x101000n, 0x1000n, 3), []);
  assert.ok(isError(overlap, E.EEXIST));
  const unmap = await client.request(CMD.DMA_UNMAP, dmaUnmapPayload(0x100000n, 0x2000n));
  assert.is(unmap.payload.length, 24);
  assert.throws(
    () => io.dma.read(0x100000n, 1),
    (e: unknown) => e instanceof WitError,
  );
  native.closeFd(fd);
  client.close();
});

test('a read-only DMA map refuses device writes with access-denied', async (ctx) => {
  const client = await connected(ctx);
  const fd = native.memfdCreate('rom', 0x1000);
  await client.request(CMD.DMA_MAP, dmaMapPayload(0n, 0x1000n, 1), [fd]);
  native.closeFd(fd);
  const io = ctx.device.io;
  if (!io) throw new Error('not attached');
  assert.throws(
    () => io.dma.write(0n, new Uint8Array(1)),
    (e: unknown) => e instanceof WitError && e.code === 'access-denied',
  );
  client.close();
});

test('SET_IRQS arms an eventfd that the device triggers', async (ctx) => {
  const client = await connected(ctx);
  const io = ctx.device.io;
  if (!io) throw new Error('not attached');
  assert.is(io.irq.trigger(1, 2), false);
  const efd = new native.EventFd();
  const reply = await client.request(CMD.DEVICE_SET_IRQS, setIrqsPayload(0x24, 1, 2, 1), [efd.fd]);
  assert.is(reply.flags, FLAG_REPLY);
  assert.is(io.irq.trigger(1, 2), true);
  assert.is(efd.read(), 1n);
  assert.is(io.irq.trigger(9, 0), false);
  efd.close();
  client.close();
});

test('fds on a command that takes none are closed and answered with EINVAL', async (ctx) => {
  const client = await connected(ctx);
  const fd = native.memfdCreate('stray', 4096);
  const before = openFds();
  const reply = await client.request(CMD.DEVICE_RESET, new Uint8Array(0), [fd]);
  assert.ok(isError(reply, E.EINVAL));
  assert.is(openFds(), before); // the server's dup is gone
  native.closeFd(fd);
  client.close();
});

test('DEVICE_RESET resets the device', async (ctx) => {
  const client = await connected(ctx);
  const reply = await client.request(CMD.DEVICE_RESET, new Uint8Array(0));
  assert.is(reply.flags, FLAG_REPLY);
  assert.is(ctx.device.resets, 1);
  client.close();
});

test('a disconnect detaches the device, unmaps DMA, closes fds; a new client can connect', async (ctx) => {
  const before = openFds();
  const client = await connected(ctx);
  const fd = native.memfdCreate('ram', 0x1000);
  await client.request(CMD.DMA_MAP, dmaMapPayload(0n, 0x1000n, 3), [fd]);
  native.closeFd(fd);
  const efd = new native.EventFd();
  await client.request(CMD.DEVICE_SET_IRQS, setIrqsPayload(0x24, 0, 0, 1), [efd.fd]);
  efd.close();
  const gone = once<[string]>(ctx.server, 'disconnect');
  client.close();
  const [reason] = await gone;
  assert.is(reason, 'eof');
  assert.is(ctx.device.detaches, 1);
  assert.is(ctx.server.stats().activeDmaMaps, 0);
  assert.is(openFds(), before);
  const again = await connected(ctx);
  assert.is(ctx.device.attaches, 2);
  again.close();
});

test('a second client while one is active is closed at once; the first keeps working', async (ctx) => {
  const first = await connected(ctx);
  const second = new RawClient(ctx.path);
  assert.is(await second.closed, 0);
  assert.is(ctx.server.stats().rejectedConnections, 1);
  const r = await first.regionRead(7, 0, 4);
  assert.is(r.flags, FLAG_REPLY);
  first.close();
});

test('a msg_size above the cap breaks the framing: error reply, then the connection closes', async (ctx) => {
  const client = await connected(ctx);
  const bad = new Uint8Array(16);
  const v = view(bad);
  v.setUint16(0, 77, true);
  v.setUint16(2, CMD.REGION_WRITE, true);
  v.setUint32(4, 0x7fffffff, true);
  const reply = await client.sendRaw(bad, 77);
  assert.ok((reply.flags & FLAG_ERROR) !== 0);
  assert.is(reply.error, 7); // E2BIG
  assert.is(await client.closed, 0);
});

test('listen refuses a path where a live server answers, and replaces a stale socket', (ctx) => {
  const other = new VfioUserServer(new RamDevice(), { socketPath: ctx.path });
  assert.throws(
    () => other.listen(),
    (e: unknown) => e instanceof VfioError && e.code === 'EADDRINUSE',
  );
  other.close();
  assert.ok(existsSync(ctx.path)); // the failed server did not unlink the live one's socket
  ctx.server.close();
  assert.not.ok(existsSync(ctx.path));
  ctx.server = new VfioUserServer(new RamDevice(), { socketPath: ctx.path });
  ctx.server.listen();
  assert.ok(existsSync(ctx.path));
});

test('listen replaces a stale socket file but never a regular file', (ctx) => {
  ctx.server.close();
  // a process that bound the path and died without unlinking it leaves a stale socket
  const script = `require('net').createServer().listen(${JSON.stringify(ctx.path)}, () => process.exit(0))`;
  assert.is(spawnSync(process.execPath, ['-e', script]).status, 0);
  assert.ok(existsSync(ctx.path));
  ctx.server = new VfioUserServer(new RamDevice(), { socketPath: ctx.path });
  ctx.server.listen();
  const client = new RawClient(ctx.path);
  client.close();
  ctx.server.close();
  writeFileSync(ctx.path, 'not a socket');
  const other = new VfioUserServer(new RamDevice(), { socketPath: ctx.path });
  assert.throws(
    () => other.listen(),
    (e: unknown) => e instanceof VfioError && e.code === 'EADDRINUSE',
  );
  other.close();
  assert.is(readFileSync(ctx.path, 'utf8'), 'not a socket');
});

test('close() from inside a device callback finishes the request, then closes', async (ctx) => {
  const client = await connected(ctx);
  const server = ctx.server;
  const device = ctx.device;
  const read = device.read.bind(device);
  device.read = (region, offset, out) => {
    server.close();
    read(region, offset, out);
  };
  client.post(
    CMD.REGION_READ,
    new Uint8Array(
      pack([
        ['u64', 0n],
        ['u32', 0],
        ['u32', 4],
      ]),
    ),
  );
  assert.is(await client.closed, 0);
  assert.is(device.detaches, 1);
  assert.not.ok(existsSync(ctx.path));
  assert.is(server.connected, false);
});

test('close is idempotent and a closed server answers stats', (ctx) => {
  ctx.server.close();
  ctx.server.close();
  assert.is(ctx.server.connected, false);
  assert.type(ctx.server.stats().connects, 'number');
});

test.run();

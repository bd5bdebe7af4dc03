// SPDX-License-Identifier: MIT
// The TS client against the native vfio-user server and a tiny in-test DeviceModel: the whole
// command set as QEMU uses it (VERSION, info, region access, DMA through a memfd, IRQ eventfds,
// reset, reconnect).
import { once } from 'node:events';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../host/errors.js';
import { EventFd } from '../../host/vfio/dma.js';
import { dma, VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';
import { REG, TINY_ID, type TinyDevice, tinyDevice } from '../helpers/vu-device.js';
import { baseline, now } from '../helpers/vu-fds.js';
import { type Running, startServer } from '../helpers/vu-server.js';

const test = suite('vfio-user client (native server)');
const RW = p.DMA_FLAG_READ | p.DMA_FLAG_WRITE;
const MSI = 1;

let device: TinyDevice;
let run: Running;
let client: VfioUserClient;

test.before.each(async () => {
  device = tinyDevice();
  run = startServer(device, { maxDataXferSize: 65536 });
  client = await run.connect();
});

test.after.each(async () => {
  await run.hangUp(client);
  run.stop();
});

async function rejection(promise: Promise<unknown>): Promise<ProtocolError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected a rejection');
}

/** Programs the tiny device's DMA engine and returns DMA_STATUS. */
async function deviceDma(iova: bigint, len: number, cmd: 1 | 2): Promise<number> {
  await client.write32(0, REG.DMA_LO, Number(iova & 0xffffffffn));
  await client.write32(0, REG.DMA_HI, Number(iova >> 32n));
  await client.write32(0, REG.DMA_LEN, len);
  await client.write32(0, REG.DMA_CMD, cmd);
  return client.read32(0, REG.DMA_STATUS);
}

test('VERSION settles on 0.0 with the server limits', async () => {
  const caps = client.serverCapabilities;
  assert.is(caps.maxDataXferSize, 65536);
  assert.ok(caps.maxMsgFds >= 1);
  assert.is(caps.pgsizes & 4096, 4096);
  assert.ok(device.attached, 'the device is attached once a client is connected');
});

test('GET_INFO reports a resettable PCI device with 9 regions and 5 IRQ indices', async () => {
  assert.equal(await client.deviceInfo(), { flags: 0b11, numRegions: 9, numIrqs: 5 });
});

test('region info gives the layout of BAR0, CONFIG and an absent BAR without fds', async () => {
  const bar0 = await client.regionInfo(0);
  assert.equal([bar0.sizeBytes, bar0.flags & 0b11, bar0.fd], [0x4000, 0b11, undefined]);
  assert.is((await client.regionInfo(7)).sizeBytes, 256);
  assert.is((await client.regionInfo(1)).sizeBytes, 0);
  assert.is((await rejection(client.regionInfo(9))).errno, 22);
});

test('IRQ info reports count and flags per index', async () => {
  const msi = await client.irqInfo(MSI);
  assert.equal([msi.index, msi.count, msi.flags & 1], [MSI, 4, 1]);
  assert.is((await client.irqInfo(0)).count, 1);
});

test('register reads and writes reach the device; a posted write lands before a later read', async () => {
  assert.is(await client.read32(0, REG.ID), TINY_ID);
  await client.write32(0, REG.SCRATCH, 0xcafef00d);
  assert.is(await client.read32(0, REG.SCRATCH), 0xcafef00d);
  await client.write32(0, REG.SCRATCH, 0x11223344, { posted: true });
  assert.is(await client.read32(0, REG.SCRATCH), 0x11223344);
  assert.is(await client.read32(7, 0), 0x10f01af4, 'vendor/device in config space');
  const block = await client.regionRead(0, 0, 0x4000);
  assert.is(block.byteLength, 0x4000);
  assert.ok((run.server.stats().regionReads[0] ?? 0) >= 3);
});

test('a read wider than max_data_xfer_size is split by the client', async () => {
  await run.hangUp(client);
  run.stop();
  run = startServer(device, { maxDataXferSize: 4096 });
  client = await run.connect();
  device.bar0.fill(0xab, 0x1000);
  const out = await client.regionRead(0, 0x1000, 0x3000);
  assert.ok(out.every((b) => b === 0xab));
  assert.is(run.server.stats().regionReads[0], 3);
});

test('the device DMAs both ways through a memfd map, and not after the unmap', async () => {
  const before = baseline();
  const mem = dma.memfd(0x10000);
  mem.write(0x100, new Uint8Array([1, 2, 3, 4]));
  await client.dmaMap({ iova: 0x100000n, sizeBytes: 0x10000, flags: RW, fd: mem.fd });
  assert.is(await deviceDma(0x100100n, 4, 1), 0);
  assert.equal([...(await client.regionRead(0, REG.BUFFER, 4))], [1, 2, 3, 4]);
  await client.regionWrite(0, REG.BUFFER, new Uint8Array([9, 8, 7]));
  assert.is(await deviceDma(0x10fffdn, 3, 2), 0);
  assert.equal([...mem.read(0xfffd, 3)], [9, 8, 7]);
  assert.is(await deviceDma(0x10fffen, 4, 2), 1, 'a DMA past the map fails');
  await client.dmaUnmap({ iova: 0x100000n, sizeBytes: 0x10000 });
  assert.is(await deviceDma(0x100100n, 4, 1), 1);
  mem.close();
  assert.equal(now(), before, 'the server dropped its mapping and fd');
});

test('an armed MSI eventfd is signalled by the device and not after disarming', async () => {
  const efd = new EventFd();
  const flags = p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER;
  await client.setIrqs({ index: MSI, flags, start: 2, count: 1, fds: [efd.fd] });
  const signalled = efd.wait(5000);
  await client.write32(0, REG.IRQ, (MSI << 16) | 2);
  assert.is(await signalled, 1n);
  assert.is(await client.read32(0, REG.IRQ_RESULT), 1);
  const none = p.IRQ_SET_DATA_NONE | p.IRQ_SET_ACTION_TRIGGER;
  await client.setIrqs({ index: MSI, flags: none, start: 0, count: 0 });
  await client.write32(0, REG.IRQ, (MSI << 16) | 2);
  assert.is(await client.read32(0, REG.IRQ_RESULT), 0);
  assert.is(efd.read(), 0n);
  efd.close();
});

test('DEVICE_RESET resets the device to power-on values', async () => {
  await client.write32(0, REG.SCRATCH, 5);
  await client.reset();
  assert.is(device.resets, 1);
  assert.is(await client.read32(0, REG.SCRATCH), 0);
});

test('a disconnect resets the device for the next client (the default)', async () => {
  await client.write32(0, REG.SCRATCH, 0x5a5a);
  await run.hangUp(client);
  assert.is(device.resets, 1);
  client = await run.connect();
  assert.is(await client.read32(0, REG.SCRATCH), 0);
});

test('with resetOnDisconnect false, a reconnecting client finds the device state but none of the old DMA maps', async () => {
  await run.hangUp(client);
  run.stop();
  run = startServer(device, { maxDataXferSize: 65536, resetOnDisconnect: false });
  client = await run.connect();
  const resets = device.resets;
  const mem = dma.memfd(0x1000);
  await client.dmaMap({ iova: 0x200000n, sizeBytes: 0x1000, flags: RW, fd: mem.fd });
  await client.write32(0, REG.SCRATCH, 0x5a5a);
  await run.hangUp(client);
  assert.equal([device.attaches, device.detaches], [2, 2], 'one per connection');
  assert.is(device.resets, resets, 'no reset on disconnect');
  client = await run.connect();
  assert.is(await client.read32(0, REG.SCRATCH), 0x5a5a);
  assert.is(await deviceDma(0x200000n, 4, 1), 1, 'the map went with the old connection');
  await client.dmaMap({ iova: 0x200000n, sizeBytes: 0x1000, flags: RW, fd: mem.fd });
  assert.is(await deviceDma(0x200000n, 4, 1), 0);
  mem.close();
});

test('a second client is turned away while the first keeps working', async () => {
  const second = await VfioUserClient.connect(run.path);
  const closed = once(second, 'close');
  const refused = rejection(second.negotiate());
  await closed;
  assert.ok(['ECONNRESET', 'EPIPE'].includes((await refused).code));
  assert.is(await client.read32(0, REG.ID), TINY_ID);
});

test.run();

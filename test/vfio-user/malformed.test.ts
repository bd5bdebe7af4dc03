// SPDX-License-Identifier: MIT
// Hostile clients against the native vfio-user server. After each case the server still answers
// a good request, every bad request got an errno, and the process's fds and memfd mappings are
// back to the baseline (the server runs in this process).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../host/errors.js';
import { EventFd } from '../../host/vfio/dma.js';
import { dma, type Reply, VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';
import { REG, TINY_ID, type TinyDevice, tinyDevice } from '../helpers/vu-device.js';
import { type Baseline, baseline, now } from '../helpers/vu-fds.js';
import { type Running, startServer } from '../helpers/vu-server.js';

const test = suite('vfio-user malformed input');
const E = { EINVAL: 22, E2BIG: 7, EEXIST: 17, ENOENT: 2, ENOSPC: 28, ENOSYS: 38, ENOTSUP: 95 };
const HALF_CLIENT = join(dirname(fileURLToPath(import.meta.url)), '../helpers/vu-half-client.js');
const MAX_XFER = 65536;
const MAX_MAPS = 8;
const RW = p.DMA_FLAG_READ | p.DMA_FLAG_WRITE;

let device: TinyDevice;
let run: Running;
let base: Baseline;
let client: VfioUserClient;

function runChild(args: string[]): ReturnType<typeof spawn> {
  return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
}

test.before(async () => {
  device = tinyDevice();
  run = startServer(device, { maxDataXferSize: MAX_XFER, maxDmaMaps: MAX_MAPS });
  // Warm up what Node opens once and keeps (child-process signal pipe, first socket paths).
  await once(runChild(['-e', '']), 'exit');
  await run.hangUp(await run.connect());
  base = baseline();
});

test.after(() => {
  run.stop();
});

test.before.each(async () => {
  client = await run.connect();
});

/** The server answers a good request on a fresh connection, and nothing leaked. */
test.after.each(async () => {
  await run.hangUp(client);
  const fresh = await run.connect();
  assert.is(await fresh.read32(0, REG.ID), TINY_ID, 'the server still serves');
  await run.hangUp(fresh);
  assert.equal(now(), base, 'fds and memfd maps are back to the baseline');
});

async function errnoOf(reply: Promise<Reply>): Promise<number> {
  try {
    await reply;
  } catch (err) {
    assert.instance(err, ProtocolError);
    return (err as ProtocolError).errno;
  }
  throw new Error('expected an error reply');
}

function message(command: number, payload?: Uint8Array, msgId = 0x4242): Uint8Array {
  return p.encodeMessage({ msgId, command, flags: p.FLAG_TYPE_COMMAND, error: 0 }, payload);
}

function withMsgSize(bytes: Uint8Array, msgSize: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(4, msgSize, true);
  return out;
}

function regionAccess(offset: bigint, region: number, count: number): Uint8Array {
  return p.encodeRegionAccess({ offset, region, count });
}

test('a header cut short by a hang-up is dropped with the connection', async () => {
  client.sendRaw(message(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo()).subarray(0, 10));
});

test('msg_size below 16 gets EINVAL and the connection is closed', async () => {
  const closed = once(client, 'close');
  const bad = withMsgSize(message(p.Command.DEVICE_GET_INFO), 8);
  assert.is(await errnoOf(client.requestRaw(bad)), E.EINVAL);
  await closed;
});

test('msg_size above the cap gets E2BIG and the connection is closed', async () => {
  const closed = once(client, 'close');
  // The header alone: the server must not close with unread bytes queued (that resets the
  // connection and the client may lose the reply).
  const bad = withMsgSize(message(p.Command.REGION_WRITE), 0x7fffffff);
  assert.is(await errnoOf(client.requestRaw(bad)), E.E2BIG);
  await closed;
});

test('msg_size shorter than what was sent cuts the message, which gets EINVAL', async () => {
  const lie = withMsgSize(message(p.Command.REGION_READ, regionAccess(0n, 0, 4)), 24);
  assert.is(await errnoOf(client.requestRaw(lie)), E.EINVAL);
});

test('an argsz below the struct size gets EINVAL and the connection stays usable', async () => {
  const dmaMap = p.encodeDmaMap({
    argsz: 16,
    flags: RW,
    fdOffset: 0n,
    iova: 0x1000n,
    sizeBytes: 0x1000n,
  });
  assert.is(await errnoOf(client.request(p.Command.DMA_MAP, dmaMap)), E.EINVAL);
  const regionInfo = p.encodeRegionInfoRequest(0, 8);
  assert.is(await errnoOf(client.request(p.Command.DEVICE_GET_REGION_INFO, regionInfo)), E.EINVAL);
  const info = p.encodeDeviceInfo({ argsz: 4 });
  assert.is(await errnoOf(client.request(p.Command.DEVICE_GET_INFO, info)), E.EINVAL);
  const short = new Uint8Array(8);
  assert.is(await errnoOf(client.request(p.Command.DEVICE_GET_IRQ_INFO, short)), E.EINVAL);
  assert.is(await client.read32(0, REG.ID), TINY_ID);
});

test('unknown and unsupported commands get ENOSYS; a client DMA_READ gets EINVAL', async () => {
  for (const command of [0, 14, 15, 16, 99, 0xffff]) {
    assert.is(await errnoOf(client.request(command)), E.ENOSYS, `command ${command}`);
  }
  const access = p.encodeDmaAccess({ iova: 0n, count: 4n });
  assert.is(await errnoOf(client.request(p.Command.DMA_READ, access)), E.EINVAL);
});

test('VERSION must come first, once, with NUL-terminated JSON and our major', async () => {
  await run.hangUp(client);
  client = await VfioUserClient.connect(run.path);
  assert.is(
    await errnoOf(client.request(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo())),
    E.EINVAL,
  );
  const noNul = new Uint8Array([0, 0, 0, 0, ...new TextEncoder().encode('{}')]);
  assert.is(await errnoOf(client.request(p.Command.VERSION, noNul)), E.EINVAL);
  const badJson = p.encodeVersion({
    major: 0,
    minor: 0,
    json: { capabilities: { max_msg_fds: 'x' } },
  });
  assert.is(await errnoOf(client.request(p.Command.VERSION, badJson)), E.EINVAL);
  assert.is(
    await errnoOf(client.request(p.Command.VERSION, p.encodeVersion({ major: 1, minor: 0 }))),
    E.ENOTSUP,
  );
  await client.negotiate();
  assert.is(
    await errnoOf(client.request(p.Command.VERSION, p.encodeVersion({ major: 0, minor: 0 }))),
    E.EINVAL,
  );
});

test('more fds than a command takes get EINVAL and the fds are closed', async () => {
  const efds = [new EventFd(), new EventFd(), new EventFd()];
  const flags = p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER;
  const set = p.encodeIrqSet({ flags, index: 0, start: 0, count: 1 });
  const fds = efds.map((e) => e.fd);
  assert.is(await errnoOf(client.request(p.Command.DEVICE_SET_IRQS, set, fds)), E.EINVAL);
  const mem = dma.memfd(0x1000);
  const map = p.encodeDmaMap({ flags: RW, fdOffset: 0n, iova: 0x1000n, sizeBytes: 0x1000n });
  assert.is(await errnoOf(client.request(p.Command.DMA_MAP, map, [mem.fd, mem.fd])), E.EINVAL);
  const sixteen = new Array<number>(16).fill(mem.fd);
  assert.is(await errnoOf(client.request(p.Command.DMA_MAP, map, sixteen)), E.EINVAL);
  mem.close();
  for (const e of efds) e.close();
});

test('fds on commands that take none get EINVAL, are closed, and have no effect', async () => {
  const mem = dma.memfd(0x1000);
  const resets = device.resets;
  assert.is(
    await errnoOf(client.request(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo(), [mem.fd])),
    E.EINVAL,
  );
  assert.is(
    await errnoOf(client.request(p.Command.REGION_READ, regionAccess(0n, 0, 4), [mem.fd])),
    E.EINVAL,
  );
  assert.is(await errnoOf(client.request(p.Command.DEVICE_RESET, undefined, [mem.fd])), E.EINVAL);
  const unmap = p.encodeDmaUnmap({ flags: 0, iova: 0x1000n, sizeBytes: 0x1000n });
  assert.is(await errnoOf(client.request(p.Command.DMA_UNMAP, unmap, [mem.fd])), E.EINVAL);
  assert.is(device.resets, resets);
  mem.close();
});

test('DMA maps that overlap, wrap, are unaligned, empty, past the fd or too many are refused', async () => {
  const map = (
    iova: bigint,
    sizeBytes: bigint,
    extra: { fdOffset?: bigint; flags?: number } = {},
    fds: number[] = [],
  ) =>
    client.request(
      p.Command.DMA_MAP,
      p.encodeDmaMap({ flags: extra.flags ?? RW, fdOffset: extra.fdOffset ?? 0n, iova, sizeBytes }),
      fds,
    );
  await map(0x100000n, 0x10000n);
  assert.is(await errnoOf(map(0x108000n, 0x10000n)), E.EEXIST);
  assert.is(await errnoOf(map(0xf8000n, 0x10000n)), E.EEXIST);
  assert.is(await errnoOf(map(2n ** 64n - 0x1000n, 0x2000n)), E.EINVAL);
  assert.is(await errnoOf(map(0x1234n, 0x1000n)), E.EINVAL);
  assert.is(await errnoOf(map(0x1000n, 0n)), E.EINVAL);
  assert.is(await errnoOf(map(0x1000n, 0x1000n, { flags: 0x10 })), E.EINVAL);
  const mem = dma.memfd(0x1000);
  assert.is(
    await errnoOf(map(0x200000n, 0x2000n, {}, [mem.fd])),
    E.EINVAL,
    'past the end of the memfd',
  );
  assert.is(await errnoOf(map(0x200000n, 0x1000n, { fdOffset: 0x800n }, [mem.fd])), E.EINVAL);
  const unmap = (iova: bigint, sizeBytes: bigint) =>
    client.request(p.Command.DMA_UNMAP, p.encodeDmaUnmap({ flags: 0, iova, sizeBytes }));
  assert.is(await errnoOf(unmap(0x300000n, 0x1000n)), E.ENOENT);
  assert.is(await errnoOf(unmap(0x100000n, 0x1000n)), E.ENOENT, 'a partial unmap');
  for (let i = 1n; i < BigInt(MAX_MAPS); i++) await map(0x1000000n * i, 0x1000n, {}, [mem.fd]);
  assert.is(await errnoOf(map(0x9000000n, 0x1000n)), E.ENOSPC);
  await client.dmaUnmap({ iova: 0n, sizeBytes: 0, flags: p.DMA_UNMAP_FLAG_ALL });
  await map(0x9000000n, 0x1000n);
  mem.close();
});

test('region accesses out of range, of a bad shape or too large are refused', async () => {
  const read = (payload: Uint8Array) => errnoOf(client.request(p.Command.REGION_READ, payload));
  assert.is(await read(regionAccess(0x4000n, 0, 4)), E.EINVAL);
  assert.is(await read(regionAccess(0x3ffcn, 0, 8)), E.EINVAL);
  assert.is(await read(regionAccess(2n ** 64n - 4n, 0, 8)), E.EINVAL, 'offset + count wraps');
  assert.is(await read(regionAccess(0n, 1, 4)), E.EINVAL, 'absent region');
  assert.is(await read(regionAccess(0n, 9, 4)), E.EINVAL);
  assert.is(await read(regionAccess(0n, 0xffffffff, 4)), E.EINVAL);
  assert.is(await read(regionAccess(0n, 0, 0)), E.EINVAL);
  assert.is(await read(regionAccess(0n, 0, MAX_XFER + 1)), E.E2BIG);
  assert.is(await read(new Uint8Array([...regionAccess(0n, 0, 4), 0, 0, 0, 0])), E.EINVAL);
  const twoOfFour = new Uint8Array([...regionAccess(0n, 0, 4), 1, 2]);
  assert.is(await errnoOf(client.request(p.Command.REGION_WRITE, twoOfFour)), E.EINVAL);
  const scratch = await client.read32(0, REG.SCRATCH);
  const posted = p.encodeMessage(
    { msgId: 9, command: p.Command.REGION_WRITE, flags: p.FLAG_NO_REPLY, error: 0 },
    p.encodeRegionAccess({ offset: 0x3ffen, region: 0, data: new Uint8Array(4) }),
  );
  client.sendRaw(posted);
  assert.is(await client.read32(0, REG.SCRATCH), scratch, 'the bad posted write got no reply');
});

test('bad SET_IRQS and a reply sent to the server get errors or silence, never a crash', async () => {
  const set = (flags: number, index: number, start: number, count: number) =>
    errnoOf(
      client.request(p.Command.DEVICE_SET_IRQS, p.encodeIrqSet({ flags, index, start, count })),
    );
  const trigger = p.IRQ_SET_ACTION_TRIGGER;
  assert.is(await set(p.IRQ_SET_DATA_NONE | p.IRQ_SET_DATA_BOOL | trigger, 1, 0, 1), E.EINVAL);
  assert.is(await set(p.IRQ_SET_DATA_NONE | trigger | p.IRQ_SET_ACTION_MASK, 1, 0, 1), E.EINVAL);
  assert.is(await set(p.IRQ_SET_DATA_NONE | trigger, 9, 0, 1), E.EINVAL);
  assert.is(await set(p.IRQ_SET_DATA_NONE | trigger, 1, 3, 2), E.EINVAL);
  assert.is(await set(p.IRQ_SET_DATA_NONE | trigger, 1, 0xffffffff, 2), E.EINVAL);
  const reply = p.encodeMessage(
    { msgId: 3, command: 4, flags: p.FLAG_TYPE_REPLY, error: 0 },
    p.encodeDeviceInfo(),
  );
  client.sendRaw(reply);
  assert.is(await client.read32(0, REG.ID), TINY_ID);
});

test('1,000 reconnects, some with DMA maps and IRQs, leave nothing behind', async () => {
  await run.hangUp(client);
  const connects = run.server.stats().connects;
  for (let i = 0; i < 1000; i++) {
    client = await run.connect();
    if (i % 50 === 0) {
      const mem = dma.memfd(0x1000);
      const efd = new EventFd();
      await client.dmaMap({ iova: 0x100000n, sizeBytes: 0x1000, flags: RW, fd: mem.fd });
      const flags = p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER;
      await client.setIrqs({ index: 1, flags, start: 0, count: 1, fds: [efd.fd] });
      mem.close();
      efd.close();
    }
    await run.hangUp(client);
  }
  assert.is(run.server.stats().connects - connects, 1000);
  client = await run.connect();
});

test('a client SIGKILLed in the middle of a message leaves the server serving', async () => {
  await run.hangUp(client);
  const connected = once(run.server, 'connect');
  const child = runChild([HALF_CLIENT, run.path]);
  const exited = once(child, 'exit');
  await connected;
  const stdout = child.stdout;
  if (!stdout) throw new Error('no stdout');
  await new Promise<void>((resolve) =>
    stdout.on('data', (d: Buffer) => d.includes('sent') && resolve()),
  );
  const gone = once(run.server, 'disconnect');
  child.kill('SIGKILL');
  await Promise.all([gone, exited]);
  assert.not.ok(device.bar0.includes(0xee), 'half a REGION_WRITE reached no register');
  client = await run.connect();
});

test.run();

// SPDX-License-Identifier: MIT
// The client's request matching, timeouts, posting, argsz retry and DMA answering, against a
// hand-scripted server over the in-memory transport (no native code).
import { once } from 'node:events';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../host/errors.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';
import { type MemoryEnd, memoryPair, type ScriptedPeer } from '../helpers/vu-memory-transport.js';

const test = suite('vfio-user client (memory transport)');
const E = {
  EINVAL: 22,
  EIO: 5,
  EFAULT: 14,
  EACCES: 13,
  EEXIST: 17,
  ETIMEDOUT: 110,
  ECONNRESET: 104,
  ENOTCONN: 107,
};

interface Ctx {
  client: VfioUserClient;
  end: MemoryEnd;
  server: ScriptedPeer;
}

function setup(timeoutMs = 5000): Ctx {
  const { client: end, server } = memoryPair();
  return { client: new VfioUserClient(end, { timeoutMs }), end, server };
}

async function rejection(promise: Promise<unknown>): Promise<ProtocolError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected a rejection');
}

/** Negotiates with the given server capabilities. */
async function negotiated(ctx: Ctx, caps: Record<string, unknown>): Promise<void> {
  const done = ctx.client.negotiate();
  const req = await ctx.server.next();
  ctx.server.reply(
    req.header,
    p.encodeVersion({ major: 0, minor: 0, json: { capabilities: caps } }),
  );
  await done;
}

test('negotiate proposes 0.0 with our capabilities and records the server defaults', async () => {
  const { client, server } = setup();
  const done = client.negotiate({ max_msg_fds: 4 });
  const req = await server.next();
  assert.is(req.header.command, p.Command.VERSION);
  const proposal = p.decodeVersion(req.payload);
  assert.is(proposal.major, 0);
  assert.equal(p.parseCapabilities(proposal.json).maxMsgFds, 4);
  server.reply(req.header, p.encodeVersion({ major: 0, minor: 0, json: { capabilities: {} } }));
  const result = await done;
  assert.is(result.capabilities.maxMsgFds, 1, 'spec default when the server omits it');
  assert.is(client.serverCapabilities.maxDataXferSize, 1048576);
  client.close();
});

test('negotiate refuses a reply with another major or a higher minor', async () => {
  const { client, server } = setup();
  const first = client.negotiate();
  server.reply((await server.next()).header, p.encodeVersion({ major: 1, minor: 0 }));
  assert.is((await rejection(first)).errno, E.EINVAL);
  const second = client.negotiate();
  server.reply((await server.next()).header, p.encodeVersion({ major: 0, minor: 1 }));
  assert.is((await rejection(second)).op, 'vfio-user:VERSION');
  client.close();
});

test('pipelined requests resolve with their own replies whatever the reply order', async () => {
  const { client, server } = setup();
  const infos = [0, 1, 2].map((i) => client.irqInfo(i));
  const reqs = await server.take(3);
  assert.equal(new Set(reqs.map((r) => r.header.msgId)).size, 3, 'distinct ids');
  assert.is(client.outstanding, 3);
  for (const req of reqs.reverse()) {
    const index = p.decodeIrqInfo(req.payload).index;
    server.reply(req.header, p.encodeIrqInfo({ index, count: 10 + index, flags: 1 }));
  }
  assert.equal(
    (await Promise.all(infos)).map((i) => i.count),
    [10, 11, 12],
  );
  client.close();
});

test('a repeated msg_id matches the oldest outstanding request with that id and command', async () => {
  const { client, server } = setup();
  const a = client.request(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo(), [], { msgId: 7 });
  const b = client.request(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo(), [], { msgId: 7 });
  const c = client.request(p.Command.DEVICE_RESET, undefined, [], { msgId: 7 });
  const [ra, , rc] = await server.take(3);
  if (!ra || !rc) throw new Error('missing requests');
  server.reply(rc.header);
  server.reply(ra.header, p.encodeDeviceInfo({ numRegions: 1 }));
  server.reply(ra.header, p.encodeDeviceInfo({ numRegions: 2 }));
  assert.is((await c).header.command, p.Command.DEVICE_RESET);
  assert.is(p.decodeDeviceInfo((await a).payload).numRegions, 1);
  assert.is(p.decodeDeviceInfo((await b).payload).numRegions, 2);
  client.close();
});

test('an error reply rejects with the op and errno; error 0 with the Error bit becomes EIO', async () => {
  const { client, server } = setup();
  const map = client.dmaMap({ iova: 0x1000n, sizeBytes: 0x1000, flags: 3 });
  server.replyError((await server.next()).header, E.EEXIST);
  const err = await rejection(map);
  assert.is(err.op, 'vfio-user:DMA_MAP');
  assert.is(err.code, 'EEXIST');
  const reset = client.reset();
  server.replyError((await server.next()).header, 0);
  assert.is((await rejection(reset)).errno, E.EIO);
  assert.is(client.stats().errorReplies, 2);
  client.close();
});

test('a request without a reply times out with ETIMEDOUT and the client stays usable', async () => {
  const { client, server } = setup(30);
  const lost = client.deviceInfo();
  const lostReq = await server.next();
  const err = await rejection(lost);
  assert.is(err.errno, E.ETIMEDOUT);
  assert.is(client.outstanding, 0);
  const late = new Promise((resolve) => client.once('protocol-error', resolve));
  server.reply(lostReq.header, p.encodeDeviceInfo());
  await late;
  assert.is(client.stats().unmatchedReplies, 1);
  const info = client.deviceInfo();
  server.reply((await server.next()).header, p.encodeDeviceInfo({ numRegions: 9, numIrqs: 5 }));
  assert.equal(await info, { flags: 0, numRegions: 9, numIrqs: 5 });
  client.close();
});

test('a posted write carries No_reply and resolves without a reply', async () => {
  const { client, server } = setup();
  await client.write32(0, 0x20, 0xdeadbeef, { posted: true });
  assert.is(client.outstanding, 0);
  const req = await server.next();
  assert.ok(req.header.flags & p.FLAG_NO_REPLY);
  const access = p.decodeRegionAccess(p.Command.REGION_WRITE, req.payload, true);
  assert.equal(
    [access.offset, access.count, [...access.data]],
    [0x20n, 4, [0xef, 0xbe, 0xad, 0xde]],
  );
  client.close();
});

test('read32 and write32 use little-endian register values', async () => {
  const { client, server } = setup();
  const read = client.read32(7, 0);
  const req = await server.next();
  const head = p.decodeRegionAccess(p.Command.REGION_READ, req.payload, false);
  server.reply(
    req.header,
    p.encodeRegionAccess({ ...head, data: new Uint8Array([0xf4, 0x1a, 0, 0x11]) }),
  );
  assert.is(await read, 0x11001af4);
  const write = client.write32(0, 4, 0x12345678);
  const wreq = await server.next();
  assert.is(wreq.header.flags & p.FLAG_NO_REPLY, 0);
  server.reply(wreq.header, p.encodeRegionAccess({ offset: 4n, region: 0, count: 4 }));
  await write;
  client.close();
});

test('regionRead splits at the server max_data_xfer_size and reassembles in order', async () => {
  const ctx = setup();
  await negotiated(ctx, { max_data_xfer_size: 4096 });
  const read = ctx.client.regionRead(1, 0x100, 10000);
  const reqs = await ctx.server.take(3);
  for (const req of reqs.reverse()) {
    const head = p.decodeRegionAccess(p.Command.REGION_READ, req.payload, false);
    const data = new Uint8Array(head.count).fill(Number(head.offset >> 12n));
    ctx.server.reply(req.header, p.encodeRegionAccess({ ...head, data }));
  }
  const out = await read;
  assert.equal([out[0], out[4095], out[4096], out[9999]], [0, 0, 1, 2]);
  ctx.client.close();
});

test('a REGION_READ reply for another offset or count is refused with EINVAL', async () => {
  const { client, server } = setup();
  const read = client.regionRead(0, 8, 4);
  const req = await server.next();
  server.reply(
    req.header,
    p.encodeRegionAccess({ offset: 8n, region: 0, data: new Uint8Array(2) }),
  );
  assert.is((await rejection(read)).errno, E.EINVAL);
  client.close();
});

test('regionInfo retries with the argsz the server named and returns caps and the fd', async () => {
  const { client, end, server } = setup();
  const bar1 = {
    flags: 0x7,
    index: 1,
    sizeBytes: 0x4000n,
    offset: 0x10000000000n,
    caps: {
      sparseMmap: [
        { offset: 0n, size: 0x1000n },
        { offset: 0x2000n, size: 0x1000n },
      ],
    },
  };
  const info = client.regionInfo(1);
  const first = await server.next();
  assert.is(p.decodeRegionInfo(first.payload).argsz, 32);
  server.reply(first.header, p.encodeRegionInfo(bar1, 32), [41]);
  const second = await server.next();
  assert.is(p.decodeRegionInfo(second.payload).argsz, 80);
  server.reply(second.header, p.encodeRegionInfo(bar1), [42]);
  assert.equal(await info, {
    index: 1,
    flags: 0xf,
    sizeBytes: 0x4000,
    offset: 0x10000000000,
    caps: {
      sparseMmap: [
        { offset: 0, size: 0x1000 },
        { offset: 0x2000, size: 0x1000 },
      ],
    },
    fd: 42,
  });
  assert.equal(end.closedFds, [41], 'the fd of the cut-short reply was closed');
  client.close();
});

test('regionInfo refuses a reply for another index and closes its fd', async () => {
  const { client, end, server } = setup();
  const info = client.regionInfo(2);
  const req = await server.next();
  server.reply(
    req.header,
    p.encodeRegionInfo({ flags: 1, index: 3, sizeBytes: 16n, offset: 0n }),
    [50],
  );
  assert.is((await rejection(info)).errno, E.EINVAL);
  assert.equal(end.closedFds, [50]);
  client.close();
});

test('setIrqs splits eventfds into messages of the server max_msg_fds', async () => {
  const ctx = setup();
  await negotiated(ctx, { max_msg_fds: 2 });
  const flags = p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER;
  const set = ctx.client.setIrqs({
    index: 2,
    flags,
    start: 1,
    count: 5,
    fds: [10, 11, 12, 13, 14],
  });
  const reqs = await ctx.server.take(3);
  assert.equal(
    reqs.map((r) => [p.decodeIrqSet(r.payload).start, p.decodeIrqSet(r.payload).count, r.fds]),
    [
      [1, 2, [10, 11]],
      [3, 2, [12, 13]],
      [5, 1, [14]],
    ],
  );
  for (const r of reqs) ctx.server.reply(r.header);
  await set;
  ctx.client.close();
});

/** Maps `memory` without an fd at 0x10000 with `flags`. */
async function mapMemory(ctx: Ctx, memory: Uint8Array, flags: number): Promise<void> {
  const map = ctx.client.dmaMap({ iova: 0x10000n, sizeBytes: memory.byteLength, flags, memory });
  const req = await ctx.server.next();
  assert.equal(req.fds, [], 'no fd for a memory map');
  ctx.server.reply(req.header);
  await map;
}

test('the server DMA_READs and DMA_WRITEs a map made with local memory', async () => {
  const ctx = setup();
  const memory = new Uint8Array(0x2000);
  memory.set([1, 2, 3, 4], 0x100);
  await mapMemory(ctx, memory, p.DMA_FLAG_READ | p.DMA_FLAG_WRITE);
  const read = await ctx.server.command(
    p.Command.DMA_READ,
    p.encodeDmaAccess({ iova: 0x10100n, count: 4n }),
  );
  assert.is(read.header.flags & p.FLAG_TYPE_MASK, p.FLAG_TYPE_REPLY);
  assert.equal([...p.decodeDmaAccess(p.Command.DMA_READ, read.payload, true).data], [1, 2, 3, 4]);
  const data = new Uint8Array([9, 9]);
  const write = await ctx.server.command(
    p.Command.DMA_WRITE,
    p.encodeDmaAccess({ iova: 0x11ffen, data }),
  );
  assert.is(write.header.flags & p.FLAG_ERROR, 0);
  assert.is(p.decodeDmaAccess(p.Command.DMA_WRITE, write.payload, false).count, 2n);
  assert.equal([memory[0x1ffe], memory[0x1fff]], [9, 9]);
  assert.equal(ctx.client.stats().dmaReads + ctx.client.stats().dmaWrites, 2);
  ctx.client.close();
});

test('DMA outside every map, against the map flags, or malformed gets an errno reply', async () => {
  const ctx = setup();
  await mapMemory(ctx, new Uint8Array(0x1000), p.DMA_FLAG_READ);
  const ask = async (command: number, payload: Uint8Array, fds: number[] = []) =>
    (await ctx.server.command(command, payload, { fds })).header.error;
  assert.is(
    await ask(p.Command.DMA_READ, p.encodeDmaAccess({ iova: 0x10ffen, count: 4n })),
    E.EFAULT,
  );
  assert.is(
    await ask(p.Command.DMA_READ, p.encodeDmaAccess({ iova: 0xfffn, count: 1n })),
    E.EFAULT,
  );
  const write = p.encodeDmaAccess({ iova: 0x10000n, data: new Uint8Array(1) });
  assert.is(await ask(p.Command.DMA_WRITE, write), E.EACCES);
  assert.is(await ask(p.Command.DMA_READ, new Uint8Array(8)), E.EINVAL);
  assert.is(
    await ask(p.Command.DMA_READ, p.encodeDmaAccess({ iova: 0x10000n, count: 1n << 30n })),
    E.EINVAL,
  );
  assert.is(
    await ask(p.Command.DMA_READ, p.encodeDmaAccess({ iova: 0x10000n, count: 1n }), [77]),
    E.EINVAL,
  );
  assert.ok(ctx.end.closedFds.includes(77), 'fds on a DMA_READ are closed');
  assert.is(
    await ask(p.Command.REGION_READ, p.encodeRegionAccess({ offset: 0n, region: 0, count: 4 })),
    E.EINVAL,
  );
  assert.is(ctx.client.stats().refusedCommands, 7);
  ctx.client.close();
});

test('a server command with No_reply gets no reply', async () => {
  const ctx = setup();
  await mapMemory(ctx, new Uint8Array(0x1000), p.DMA_FLAG_READ | p.DMA_FLAG_WRITE);
  const data = new Uint8Array([5]);
  const posted = p.encodeDmaAccess({ iova: 0x10000n, data });
  const header = { msgId: 1, command: p.Command.DMA_WRITE, flags: p.FLAG_NO_REPLY, error: 0 };
  ctx.server.end.send(p.encodeMessage(header, posted));
  // The next message the server sees is the client's next request, not a DMA_WRITE reply.
  const info = ctx.client.deviceInfo();
  const next = await ctx.server.next();
  assert.is(next.header.command, p.Command.DEVICE_GET_INFO);
  assert.is(ctx.client.stats().dmaWrites, 1);
  ctx.server.reply(next.header, p.encodeDeviceInfo());
  await info;
  ctx.client.close();
});

test('dmaUnmap drops the local memory: later DMA_READ gets EFAULT', async () => {
  const ctx = setup();
  await mapMemory(ctx, new Uint8Array(0x1000), p.DMA_FLAG_READ);
  const unmap = ctx.client.dmaUnmap({ iova: 0x10000n, sizeBytes: 0x1000 });
  const req = await ctx.server.next();
  assert.equal(p.decodeDmaUnmap(req.payload), {
    argsz: 24,
    flags: 0,
    iova: 0x10000n,
    sizeBytes: 0x1000n,
  });
  ctx.server.reply(req.header, req.payload);
  await unmap;
  const read = await ctx.server.command(
    p.Command.DMA_READ,
    p.encodeDmaAccess({ iova: 0x10000n, count: 1n }),
  );
  assert.is(read.header.error, E.EFAULT);
  ctx.client.close();
});

test('dmaMap refuses fd together with memory, and memory smaller than the map', async () => {
  const { client } = setup();
  try {
    await client.dmaMap({ iova: 0n, sizeBytes: 16, flags: 3, fd: 3, memory: new Uint8Array(16) });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, TypeError);
  }
  try {
    await client.dmaMap({ iova: 0n, sizeBytes: 32, flags: 3, memory: new Uint8Array(16) });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RangeError);
  }
  assert.is(client.stats().requests, 0);
  client.close();
});

test('a transport that throws on send rejects the request with EIO and keeps nothing outstanding', async () => {
  const { client, end } = setup();
  end.closed = true;
  const err = await rejection(client.deviceInfo());
  assert.equal([err.op, err.errno], ['vfio-user:DEVICE_GET_INFO', E.EIO]);
  assert.is(client.outstanding, 0);
  client.close();
});

test('close rejects every outstanding request and later ones fail with ENOTCONN', async () => {
  const { client, server } = setup();
  const a = client.deviceInfo();
  const b = client.irqInfo(0);
  await server.take(2);
  client.close();
  assert.equal(
    [(await rejection(a)).errno, (await rejection(b)).errno],
    [E.ECONNRESET, E.ECONNRESET],
  );
  const later = await rejection(client.reset());
  assert.equal([later.op, later.errno], ['vfio-user:DEVICE_RESET', E.ENOTCONN]);
  client.close();
});

test('the server closing emits close and rejects what was outstanding', async () => {
  const { client, server } = setup();
  const closed = once(client, 'close');
  const a = client.deviceInfo();
  await server.next();
  server.end.close();
  assert.equal(await closed, [0]);
  assert.is((await rejection(a)).errno, E.ECONNRESET);
  assert.ok(client.closed);
});

test('a reply nobody asked for has its fds closed and is reported', async () => {
  const { client, end, server } = setup();
  const reported = new Promise<ProtocolError>((resolve) => client.once('protocol-error', resolve));
  server.reply({ msgId: 99, command: 5, msgSize: 16, flags: 0, error: 0 }, undefined, [60, 61]);
  assert.is((await reported).op, 'vfio-user:DEVICE_GET_REGION_INFO');
  assert.equal(end.closedFds, [60, 61]);
  client.close();
});

test('a message whose msg_size lies is reported and the client keeps working', async () => {
  const { client, server } = setup();
  const reported = new Promise<ProtocolError>((resolve) => client.once('protocol-error', resolve));
  const bad = p.encodeMessage(
    { msgId: 0, command: 4, flags: p.FLAG_TYPE_REPLY, error: 0 },
    new Uint8Array(16),
  );
  new DataView(bad.buffer).setUint32(4, 20, true);
  server.end.send(bad);
  const info = client.deviceInfo();
  assert.is((await reported).errno, E.EINVAL);
  server.reply((await server.next()).header, p.encodeDeviceInfo({ numIrqs: 5 }));
  assert.is((await info).numIrqs, 5);
  client.close();
});

test.run();

// SPDX-License-Identifier: MIT
// The client over the native VfioUserSocket against a hand-scripted node:net peer (no fds), and
// the memfd helper. The native server's tests are in client-basic and malformed.
import { once } from 'node:events';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError, VfioError } from '../../host/errors.js';
import { dma, VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';
import { baseline, now } from '../helpers/vu-fds.js';
import { listenNetPeer, type NetPeerServer } from '../helpers/vu-net-peer.js';

const test = suite('vfio-user client (native socket)');
let peers: NetPeerServer;

test.before(async () => {
  peers = await listenNetPeer();
});

test.after(async () => {
  await peers.close();
});

test('VERSION and GET_INFO go over the socket and replies are framed by msg_size', async () => {
  const client = await VfioUserClient.connect(peers.path);
  const server = await peers.accept();
  const version = client.negotiate();
  const info = client.deviceInfo();
  const [v, i] = await server.take(2);
  if (!v || !i) throw new Error('missing requests');
  assert.is(v.header.command, p.Command.VERSION);
  const json = { capabilities: { max_data_xfer_size: 4096 } };
  // Both replies in one write: the native side must split them by msg_size.
  const r1 = p.encodeMessage(
    { msgId: v.header.msgId, command: 1, flags: p.FLAG_TYPE_REPLY, error: 0 },
    p.encodeVersion({ major: 0, minor: 0, json }),
  );
  const r2 = p.encodeMessage(
    { msgId: i.header.msgId, command: 4, flags: p.FLAG_TYPE_REPLY, error: 0 },
    p.encodeDeviceInfo({ flags: 3, numRegions: 9, numIrqs: 5 }),
  );
  server.end.socket.write(Buffer.concat([r1, r2]));
  assert.is((await version).capabilities.maxDataXferSize, 4096);
  assert.equal(await info, { flags: 3, numRegions: 9, numIrqs: 5 });
  client.close();
  server.end.close();
});

test('a large REGION_READ reply arriving in pieces is reassembled', async () => {
  const client = await VfioUserClient.connect(peers.path);
  const server = await peers.accept();
  const read = client.regionRead(0, 0, 65536);
  const req = await server.next();
  const data = new Uint8Array(65536).map((_, i) => i & 0xff);
  const reply = p.encodeMessage(
    { msgId: req.header.msgId, command: req.header.command, flags: p.FLAG_TYPE_REPLY, error: 0 },
    p.encodeRegionAccess({ offset: 0n, region: 0, data }),
  );
  server.end.socket.write(reply.subarray(0, 7));
  server.end.socket.write(reply.subarray(7, 30000));
  server.end.socket.write(reply.subarray(30000));
  const out = await read;
  assert.equal([out[255], out[256], out[65535]], [255, 0, 255]);
  client.close();
  server.end.close();
});

test('the peer hanging up emits close and rejects the outstanding request', async () => {
  const client = await VfioUserClient.connect(peers.path);
  const server = await peers.accept();
  const closed = once(client, 'close');
  const pending = client.reset();
  await server.next();
  server.end.close();
  await closed;
  try {
    await pending;
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ProtocolError);
    assert.is((err as ProtocolError).code, 'ECONNRESET');
  }
});

test('connect to a missing socket fails with VfioError ENOENT', async () => {
  try {
    await VfioUserClient.connect(`${peers.path}.missing`);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, VfioError);
    assert.is((err as VfioError).code, 'ENOENT');
  }
});

test('dma.memfd writes and reads back, refuses out-of-range access, and close frees the fd', () => {
  const before = baseline();
  const mem = dma.memfd(8192);
  assert.ok(mem.fd > 2);
  mem.write(4094, new Uint8Array([1, 2, 3, 4]));
  assert.equal([...mem.read(4094, 4)], [1, 2, 3, 4]);
  assert.equal([...mem.read(0, 2)], [0, 0]);
  assert.throws(() => mem.read(8190, 4), RangeError);
  assert.throws(() => mem.write(-1, new Uint8Array(1)), RangeError);
  mem.close();
  mem.close();
  assert.is(mem.fd, -1);
  assert.throws(() => mem.read(0, 1), RangeError);
  assert.equal(now(), before);
});

test.run();

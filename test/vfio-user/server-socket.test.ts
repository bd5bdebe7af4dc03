// SPDX-License-Identifier: MIT
// The native client socket (VfioUserSocket) and the fd helpers of vfio_core.node, against a
// plain node:net UNIX server that writes raw vfio-user frames.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadVfioUserNative } from '../../host/native/binding.js';
import { NATIVE_KEYS, NATIVE_VFIO_USER_KEYS } from '../../host/native/types.js';

const native = loadVfioUserNative();
const test = suite('vfio-user native socket');

function frame(msgId: number, command: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, msgId, true);
  view.setUint16(2, command, true);
  view.setUint32(4, out.length, true);
  view.setUint32(8, 1, true); // reply
  out.set(payload, 16);
  return out;
}

interface Peer {
  server: Server;
  path: string;
  dir: string;
  accepted: Promise<Socket>;
}

async function listen(): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-sock-'));
  const path = join(dir, 'vu.sock');
  let resolveAccepted: (s: Socket) => void = () => {};
  const accepted = new Promise<Socket>((r) => {
    resolveAccepted = r;
  });
  const server = createServer((s) => resolveAccepted(s));
  await new Promise<void>((r) => server.listen(path, r));
  return { server, path, dir, accepted };
}

function stop(peer: Peer): void {
  peer.server.close();
  rmSync(peer.dir, { recursive: true, force: true });
}

test('the real addon exports the common keys plus the vfio-user keys', () => {
  const expected = [...Object.keys(NATIVE_KEYS), ...Object.keys(NATIVE_VFIO_USER_KEYS)]
    // fake is the fake addon's alone; wasmtime only a build with the engine linked in has
    .filter((k) => k !== 'fake' && (k !== 'wasmtime' || k in native))
    .sort();
  assert.equal(Object.keys(native).sort(), expected);
});

test('messages are framed by msg_size however the bytes are chunked', async () => {
  const peer = await listen();
  const sock = native.VfioUserSocket.connect(peer.path);
  const got: Uint8Array[] = [];
  const three = new Promise<void>((resolve) => {
    sock.onMessage((msg, fds) => {
      assert.equal(fds, []);
      got.push(msg);
      if (got.length === 3) resolve();
    });
  });
  const remote = await peer.accepted;
  const a = frame(1, 9, new Uint8Array([1, 2, 3]));
  const b = frame(2, 4, new Uint8Array(0));
  const c = frame(3, 9, new Uint8Array(5000).fill(7));
  const all = Buffer.concat([a, b, c]);
  remote.write(all.subarray(0, 10)); // half a header
  remote.write(all.subarray(10, 30)); // rest of a, head of b
  remote.write(all.subarray(30));
  await three;
  assert.equal(Array.from(got[0] ?? []), Array.from(a));
  assert.equal(Array.from(got[1] ?? []), Array.from(b));
  assert.is(got[2]?.length, c.length);
  sock.close();
  remote.destroy();
  stop(peer);
});

test('send delivers the bytes and the peer closing calls onClose with 0', async () => {
  const peer = await listen();
  const sock = native.VfioUserSocket.connect(peer.path);
  const closed = new Promise<number>((resolve) => sock.onClose(resolve));
  sock.onMessage(() => {});
  const remote = await peer.accepted;
  const received = new Promise<Buffer>((resolve) => remote.once('data', resolve));
  sock.send(frame(9, 13, new Uint8Array(0)));
  const data = await received;
  assert.is(data.readUInt16LE(2), 13);
  remote.end();
  assert.is(await closed, 0);
  sock.close(); // idempotent after the peer closed
  stop(peer);
});

test('a frame whose msg_size is below the header size closes with EPROTO', async () => {
  const peer = await listen();
  const sock = native.VfioUserSocket.connect(peer.path);
  const closed = new Promise<number>((resolve) => sock.onClose(resolve));
  sock.onMessage(() => assert.unreachable('no message'));
  const remote = await peer.accepted;
  const bad = frame(1, 1, new Uint8Array(0));
  new DataView(bad.buffer).setUint32(4, 8, true);
  remote.write(bad);
  assert.is(await closed, 71); // EPROTO
  remote.destroy();
  stop(peer);
});

test('connect to a missing path throws VfioError op connect ENOENT', () => {
  try {
    native.VfioUserSocket.connect('/nonexistent/vfiobox.sock');
    assert.unreachable('connect succeeded');
  } catch (err) {
    assert.is((err as { op?: string }).op, 'connect');
    assert.is((err as { code?: string }).code, 'ENOENT');
  }
});

test('memfdCreate, fdWrite, fdRead and closeFd round-trip without leaking an fd', () => {
  const before = readdirSync('/proc/self/fd').length;
  const fd = native.memfdCreate('vfiobox-test', 8192);
  native.fdWrite(fd, 4096, new Uint8Array([0xde, 0xad]));
  assert.equal(Array.from(native.fdRead(fd, 4095, 4)), [0, 0xde, 0xad, 0]);
  assert.throws(
    () => native.fdRead(fd, 8190, 4),
    (e: { code?: string }) => e.code === 'EIO',
  );
  native.closeFd(fd);
  assert.is(readdirSync('/proc/self/fd').length, before);
  assert.throws(() => native.closeFd(1), RangeError);
});

test.run();

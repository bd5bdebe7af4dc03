// SPDX-License-Identifier: MIT
// VfioUserServer on a worker thread's loop: DMA to client memory mapped without an fd goes as
// DMA_READ messages (the serving thread waits for the reply, so the client must be elsewhere),
// and terminating the worker releases the socket and the client.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CMD,
  dmaMapPayload,
  FLAG_REPLY,
  message,
  pack,
  RawClient,
  tempSocketPath,
  view,
} from './server-fixture.js';

const test = suite('vfio-user server on a worker');

interface Started {
  worker: Worker;
  path: string;
  cleanup: () => void;
  next: () => Promise<Record<string, unknown>>;
}

async function start(): Promise<Started> {
  const { path, cleanup } = tempSocketPath();
  const url = new URL('./server-worker-entry.js', import.meta.url);
  const worker = new Worker(url, { workerData: { path } });
  const inbox: Array<Record<string, unknown>> = [];
  const waiters: Array<(m: Record<string, unknown>) => void> = [];
  worker.on('message', (m: Record<string, unknown>) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const m = inbox.shift();
      if (m) resolve(m);
      else waiters.push(resolve);
    });
  assert.equal(await next(), { event: 'listening' });
  return { worker, path, cleanup, next };
}

test('device DMA into memory mapped without an fd is answered by the client', async () => {
  const s = await start();
  const client = new RawClient(s.path);
  await client.negotiate();
  assert.equal(await s.next(), { event: 'connect' });
  const map = await client.request(CMD.DMA_MAP, dmaMapPayload(0x40000n, 0x1000n, 1));
  assert.is(map.flags, FLAG_REPLY);
  client.onCommand = (cmd) => {
    const v = view(cmd.payload);
    const iova = v.getBigUint64(0, true);
    const count = Number(v.getBigUint64(8, true));
    const data = new Uint8Array(count).map((_, i) => 0x30 + i);
    const payload = pack([
      ['u64', iova],
      ['u64', BigInt(count)],
      ['bytes', data],
    ]);
    client.sock.send(message(cmd.msgId, cmd.command, payload, FLAG_REPLY));
  };
  s.worker.postMessage({ dmaRead: [0x40010n, 3] });
  const got = await s.next();
  assert.equal(Array.from(got.bytes as Uint8Array), [0x30, 0x31, 0x32]);
  client.close();
  await s.worker.terminate();
  s.cleanup();
});

test('terminating the worker closes the client and removes the socket file', async () => {
  const s = await start();
  const client = new RawClient(s.path);
  await client.negotiate();
  assert.ok(existsSync(s.path));
  await s.worker.terminate();
  assert.is(await client.closed, 0);
  assert.not.ok(existsSync(s.path));
  s.cleanup();
});

test.run();

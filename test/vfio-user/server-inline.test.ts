// SPDX-License-Identifier: MIT
// The serving loop's inline wait (native/src/js/vfio_user_server.cc WaitForNextRequest): after
// a reply the server waits briefly for the client's next request and serves it without a trip
// through the event loop. These tests hold it to its bounds: requests are answered in order,
// and the loop's own work (a timer, a worker message) still runs while a client keeps the
// server busy with back-to-back requests, and a wait ends as soon as the loop has work.
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { CMD, FLAG_REPLY, RamDevice, RawClient, tempSocketPath } from './server-fixture.js';

const test = suite('vfio-user server: inline serving');

type Event = Record<string, unknown> & { event: string };

async function start() {
  const { path, cleanup } = tempSocketPath();
  const worker = new Worker(new URL('./server-inline-entry.js', import.meta.url), {
    workerData: { path },
  });
  const inbox: Event[] = [];
  const waiters: Array<(m: Event) => void> = [];
  worker.on('message', (m: Event) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const next = () =>
    new Promise<Event>((resolve) => {
      const m = inbox.shift();
      if (m) resolve(m);
      else waiters.push(resolve);
    });
  assert.equal(await next(), { event: 'listening' });
  const stop = async () => {
    await worker.terminate();
    cleanup();
  };
  return { worker, path, next, inbox, stop };
}

// An upper bound only: the timer fires within a few bursts (32 requests each) of its due time.
const MAX_REQUESTS = 200_000;

test('back-to-back requests are answered in order and the loop still runs its timers', async () => {
  const s = await start();
  try {
    const client = new RawClient(s.path);
    await client.negotiate();
    assert.equal(await s.next(), { event: 'connect' });
    // a pattern the reads must return, written through the server like any guest write
    const pattern = new Uint8Array(256).map((_, i) => (i * 7 + 3) & 0xff);
    const w = await client.regionWrite(0, 0, pattern);
    assert.is(w.flags, FLAG_REPLY);
    s.worker.postMessage({ armTimer: 5 });
    let sent = 0;
    let timer: Event | undefined;
    while (sent < MAX_REQUESTS) {
      const offset = (sent * 4) % 256;
      const r = await client.regionRead(0, offset, 4);
      sent++;
      assert.is(r.command, CMD.REGION_READ);
      assert.equal(
        Array.from(r.payload.subarray(16)),
        Array.from(pattern.subarray(offset, offset + 4)),
      );
      timer = s.inbox.find((m) => m.event === 'timer');
      if (timer) break;
    }
    assert.ok(timer, `the worker's timer did not fire during ${sent} back-to-back requests`);
    // the device saw every read the client sent before the timer was reported
    assert.ok((timer.reads as number) <= sent);
    s.worker.postMessage({ stats: true });
    let stats: Event | undefined;
    while (!stats) {
      const m = await s.next();
      if (m.event === 'stats') stats = m;
    }
    const st = stats.stats as { inlineServed: number; regionReads: number[] };
    assert.is(st.regionReads[0], sent);
    // the client waits for each reply, so most of its requests arrive while the server waits
    assert.ok(st.inlineServed > 0, `no request served inline out of ${sent}`);
    assert.ok(st.inlineServed <= sent);
    client.close();
  } finally {
    await s.stop();
  }
});

test("a client on the server's own loop: each wait yields to the loop at once", async () => {
  // This client cannot send its next request before the loop hands it the reply, so a wait
  // that watched only the client's socket would sit out its whole timeout after every reply.
  // The reply makes the loop's epoll fd readable, and that ends the wait.
  const { path, cleanup } = tempSocketPath();
  const server = new VfioUserServer(new RamDevice(), { socketPath: path });
  server.listen();
  const client = new RawClient(path);
  try {
    await client.negotiate();
    const n = 200;
    for (let i = 0; i < n; i++) {
      const r = await client.regionRead(0, (i * 4) % 256, 4);
      assert.is(r.command, CMD.REGION_READ);
      assert.is(r.flags, FLAG_REPLY);
    }
    const st = server.stats();
    assert.is(st.regionReads[0], n);
    assert.is(st.inlineTimeouts, 0, 'a wait ran into its timeout');
    assert.ok(st.inlineYields > 0, 'no wait yielded to the loop');
    assert.is(st.inlineServed, 0, 'a same-loop client was served inline');
  } finally {
    client.close();
    server.close();
    cleanup();
  }
});

test.run();

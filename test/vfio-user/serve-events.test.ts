// SPDX-License-Identifier: MIT
// What a device worker posts on its events port right before it dies still reaches the
// supervisor: its listeners get every event, and the config-state snapshot it posted last is
// the one the restarted worker adopts.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServeEvent } from '../../host/serve/spec.js';
import { DeviceSupervisor } from '../../host/serve/supervisor.js';

const test = suite('serve: events of a dying worker');

/** How many numbered events the first worker posts before it dies (serve-events-entry.ts). */
const BURST = 64;
/** Bounds the wait for an event that must come; the test fails rather than hangs. */
const EVENT_TIMEOUT_MS = 20_000;

let dir = '';

/**
 * Blocks this thread until thread `tid` of this process has ended (its /proc entry is gone),
 * so that the worker's events and its exit are all pending when the loop next runs: the order
 * in which a loaded machine would have them. Throws after `limitMs`.
 */
function blockUntilThreadGone(tid: string, limitMs: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + limitMs;
  while (existsSync(`/proc/self/task/${tid}`)) {
    if (Date.now() > end) throw new Error(`thread ${tid} still running after ${limitMs} ms`);
    Atomics.wait(cell, 0, 0, 1);
  }
}

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiobox-serve-events-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('events posted just before a worker exits are delivered, and the last snapshot is adopted', async () => {
  const socketPath = join(dir, 'probe.sock');
  const sup = new DeviceSupervisor(
    { name: 'probe', pluginPath: 'unused', socketPath },
    { workerUrl: new URL('./serve-events-entry.js', import.meta.url) },
  );
  const seen: ServeEvent[] = [];
  let onAdopted: (e: ServeEvent) => void = () => undefined;
  const adopted = new Promise<ServeEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no restarted worker')), EVENT_TIMEOUT_MS);
    onAdopted = (e) => {
      clearTimeout(timer);
      resolve(e);
    };
  });
  sup.on('event', (e: ServeEvent) => {
    seen.push(e);
    if (e.event === 'adopted') onAdopted(e);
  });
  let adoptedEvent: ServeEvent;
  try {
    await sup.start();
    blockUntilThreadGone(readFileSync(`${socketPath}.tid`, 'utf8'), EVENT_TIMEOUT_MS);
    adoptedEvent = await adopted;
  } finally {
    await sup.stop();
  }
  const burst = seen.filter((e) => e.event === 'burst').map((e) => e.seq);
  assert.equal(
    burst,
    Array.from({ length: BURST }, (_, i) => i),
  );
  // every burst event came before the supervisor saw the worker exit
  const exitAt = seen.findIndex((e) => e.event === 'worker-exit');
  assert.ok(exitAt > 0, 'a worker-exit event');
  assert.ok(
    seen.slice(exitAt).every((e) => e.event !== 'burst'),
    'no burst event after worker-exit',
  );
  assert.equal(adoptedEvent.state, [BURST - 1, 0xa5]);
});

test('a worker that dies before start() answers fails the start, and is not restarted', async () => {
  const sup = new DeviceSupervisor(
    { name: 'dies-starting', pluginPath: 'unused', socketPath: join(dir, 'dies.sock') },
    { workerUrl: new URL('./serve-events-entry.js', import.meta.url) },
  );
  const seen: string[] = [];
  sup.on('event', (e: ServeEvent) => seen.push(e.event));
  let failure: Error | undefined;
  try {
    await sup.start();
  } catch (err) {
    failure = err as Error;
  } finally {
    await sup.stop();
  }
  assert.ok(failure, 'start() rejected');
  assert.match(failure.message, /device dies-starting: its worker exited with code 3 before/);
  // worker-exit is what precedes a restart; a start that failed is not restarted
  assert.equal(seen, []);
});

test.run();

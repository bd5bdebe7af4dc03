// SPDX-License-Identifier: MIT
// The engine of a served device (DeviceSpec.engine, `vfiobox serve --engine`): it reaches the
// device worker, a restarted worker gets the same one, and on wasmtime a call over its budget
// is stopped inside the worker (a fence, no watchdog restart).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServeEvent } from '../../host/serve/spec.js';
import { DeviceSupervisor, watchdogLimitMs } from '../../host/serve/supervisor.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import { runCli } from '../helpers/cli.js';
import { cacheDirOf, pluginPath } from '../plugins/support.js';

const test = suite('serve: the engine');

const MAGIC = 0x686f7374;
const ONES = 0xffffffff;
/** hostile.c: region-read of 0x0c spins forever */
const SPIN = 0x0c;
const BUDGET_MS = 100;
/** Bounds a wait for an event that must come; a test fails rather than hangs. */
const EVENT_TIMEOUT_MS = 20_000;

let dir = '';

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiobox-serve-engine-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Resolves with the first event named `name` from now on. A wait the test never reaches (an
 * earlier step failed) is no unhandled rejection: the test reports its own failure.
 */
function nextEvent(sup: DeviceSupervisor, name: string): Promise<ServeEvent> {
  const event = new Promise<ServeEvent>((resolve, reject) => {
    const timer = setTimeout(() => {
      sup.off('event', on);
      reject(new Error(`no '${name}' event within ${EVENT_TIMEOUT_MS} ms`));
    }, EVENT_TIMEOUT_MS);
    const on = (e: ServeEvent) => {
      if (e.event !== name) return;
      clearTimeout(timer);
      sup.off('event', on);
      resolve(e);
    };
    sup.on('event', on);
  });
  event.catch(() => undefined);
  return event;
}

test('the spec carries the engine into the worker, and a restarted worker gets the same', async () => {
  const sup = new DeviceSupervisor(
    {
      name: 'probe',
      pluginPath: 'unused',
      socketPath: join(dir, 'probe.sock'),
      engine: 'wasmtime',
    },
    { workerUrl: new URL('./serve-engine-entry.js', import.meta.url) },
  );
  const started: ServeEvent[] = [];
  sup.on('event', (e: ServeEvent) => {
    if (e.event === 'started') started.push(e);
  });
  const restarted = nextEvent(sup, 'restarted');
  try {
    await sup.start();
    await restarted; // the first worker exited; the supervisor started another
  } finally {
    await sup.stop();
  }
  assert.equal(
    started.map((e) => [e.engine, e.adopt]),
    [
      ['wasmtime', false],
      ['wasmtime', true],
    ],
  );
});

test('the watchdog waits twice the budget on an engine that stops overruns itself', () => {
  const spec = { name: 'x', pluginPath: 'x', socketPath: 'x', budgetMs: 40 };
  assert.is(watchdogLimitMs(spec), 40);
  assert.is(watchdogLimitMs({ ...spec, engine: 'v8' }), 40);
  assert.is(watchdogLimitMs({ ...spec, engine: 'wasmtime' }), 80);
});

test('on wasmtime a spinning call is stopped at its budget in the worker: fenced, not restarted', async () => {
  const socketPath = join(dir, 'hostile.sock');
  const sup = new DeviceSupervisor({
    name: 'hostile',
    pluginPath: pluginPath('hostile'),
    socketPath,
    engine: 'wasmtime',
    budgetMs: BUDGET_MS,
    cacheDir: cacheDirOf('wasmtime'),
  });
  const events: ServeEvent[] = [];
  sup.on('event', (e: ServeEvent) => events.push(e));
  const loaded = nextEvent(sup, 'loaded');
  let client: VfioUserClient | undefined;
  try {
    await sup.start();
    assert.is((await loaded).engine, 'wasmtime');
    client = await VfioUserClient.connect(socketPath, { timeoutMs: 10_000 });
    await client.negotiate();
    assert.is(await client.read32(0, 0), MAGIC);
    const fence = nextEvent(sup, 'fence');
    const restart = nextEvent(sup, 'restart');
    assert.is(await client.read32(0, SPIN), ONES, 'the access in flight reads all-ones');
    assert.match(
      String((await fence).message),
      new RegExp(`exceeded its budget of ${BUDGET_MS} ms`),
    );
    await restart; // the device model's own restart (backoff 0), in the same worker
    assert.is(await client.read32(0, 0), MAGIC, 'a fresh instance answers');
    const st = await sup.stats();
    assert.is(st?.watchdogRestarts, 0);
    assert.not.ok(events.some((e) => e.event === 'watchdog-overrun' || e.event === 'worker-exit'));
  } finally {
    client?.close();
    await sup.stop(); // also when start failed: its worker must not keep the process alive
  }
});

test('--engine takes v8 or wasmtime; anything else is a usage error', async () => {
  const r = await runCli(['serve', 'edu', '--socket', join(dir, 'x.sock'), '--engine', 'v9']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--engine must be one of v8, wasmtime \(got 'v9'\)/);
  const help = await runCli(['serve', '--help']);
  assert.match(help.stdout, /--engine v8\|wasmtime/);
});

test.run();

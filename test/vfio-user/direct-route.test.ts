// SPDX-License-Identifier: MIT
// The server's direct BAR route (native/src/js/vfio_user_direct.cc): with a wasmtime plugin, an
// aligned 1/2/4/8-byte BAR access is answered by the native server calling the plugin itself,
// with no JS on the path (the model's read/write counters do not move); other accesses and the
// MSI-X structures go through the model; a call that traps is retried through the model, which
// fences the device (all-ones) and restarts the plugin, and the route comes back with the new
// instance. With the V8 engine there is no route.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPluginDevice, type PluginDeviceModel } from '../../host/device/model.js';
import { GRANT_ALL } from '../../host/harness/harness.js';
import type { CompiledPlugin } from '../../host/plugins/engine.js';
import { engineByName } from '../../host/plugins/engines/index.js';
import { EDU } from '../helpers/edu.js';
import { type Running, startServer } from '../helpers/vu-server.js';
import { cacheDirOf, pluginBytes } from '../plugins/support.js';

const test = suite('vfio-user direct BAR route');

const HOSTILE_TRAP = 0x08; // test/fixtures/plugins/hostile/src/hostile.c: region access traps
const HOSTILE_MAGIC = 0x686f7374;

async function compile(engine: 'v8' | 'wasmtime', name: string): Promise<CompiledPlugin> {
  return engineByName(engine).compile(pluginBytes(name), { cacheDir: cacheDirOf(engine), name });
}

function serve(plugin: CompiledPlugin, name: string): { model: PluginDeviceModel; run: Running } {
  const model = createPluginDevice({ name, plugin, grant: GRANT_ALL, restartBackoffMs: [0] });
  return { model, run: startServer(model) };
}

test('edu on wasmtime: aligned BAR accesses are answered without the model', async () => {
  const { model, run } = serve(await compile('wasmtime', 'edu'), 'edu');
  const client = await run.connect();
  try {
    const before = model.stats();
    assert.is(await client.read32(0, EDU.IDENT), EDU.IDENT_VALUE);
    await client.write32(0, EDU.LIVENESS, 0x12345678);
    assert.is(await client.read32(0, EDU.LIVENESS), ~0x12345678 >>> 0);
    const s = run.server.stats();
    assert.is(s.directReads, 2);
    assert.is(s.directWrites, 1);
    assert.is(s.directFallbacks, 0);
    assert.is(model.stats().reads, before.reads, 'the model saw none of them');
    assert.is(model.stats().writes, before.writes);
    // 16 bytes is no single access: the model splits it into the same two 8-byte plugin calls
    // the route makes for each half
    const wide = await client.regionRead(0, EDU.IDENT, 16);
    assert.is(model.stats().reads, before.reads + 1);
    assert.is(run.server.stats().directReads, 2);
    const lo = await client.regionRead(0, EDU.IDENT, 8);
    const hi = await client.regionRead(0, EDU.IDENT + 8, 8);
    assert.equal([...wide], [...lo, ...hi]);
    assert.is(run.server.stats().directReads, 4);
  } finally {
    await run.hangUp(client);
    run.stop();
    model.close();
  }
});

test('a trap on the direct route fences through the model; the restart brings the route back', async () => {
  const { model, run } = serve(await compile('wasmtime', 'hostile'), 'hostile');
  const client = await run.connect();
  try {
    assert.is(await client.read32(0, 0), HOSTILE_MAGIC);
    assert.is(run.server.stats().directReads, 1);
    // the trap: retried through the model, which fences and answers all-ones
    assert.is(await client.read32(0, HOSTILE_TRAP), 0xffffffff);
    assert.is(run.server.stats().directFallbacks, 1);
    assert.is(model.stats().fences, 1);
    // the restart timer (0 ms backoff) runs on the loop; until then the device is fenced
    for (let i = 0; i < 1000 && model.stats().fenced; i++) {
      await new Promise((r) => setImmediate(r));
    }
    assert.is(model.stats().fenced, false, 'the plugin was restarted');
    assert.is(await client.read32(0, 0), HOSTILE_MAGIC);
    assert.is(run.server.stats().directReads, 2, 'the new instance is called directly');
  } finally {
    await run.hangUp(client);
    run.stop();
    model.close();
  }
});

test('edu on v8: no direct route', async () => {
  const { model, run } = serve(await compile('v8', 'edu'), 'edu');
  const client = await run.connect();
  try {
    const before = model.stats().reads;
    assert.is(await client.read32(0, EDU.IDENT), EDU.IDENT_VALUE);
    assert.is(run.server.stats().directReads, 0);
    assert.is(model.stats().reads, before + 1);
  } finally {
    await run.hangUp(client);
    run.stop();
    model.close();
  }
});

test.run();

// SPDX-License-Identifier: MIT
// The TypeScript plugin path (plugins/js/ticker, componentize-js): the component's WASI imports
// are satisfied by the deny-by-default shim, its golden trace replays on the virtual clock, and
// a WASI import outside the shim's table is still refused. WASI exists only on the V8 engine:
// on wasmtime the same plugin is refused at load, with a message that names the V8 engine.
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import { readAbi } from '../../host/plugins/abi.js';
import { loadPlugin } from '../../host/plugins/loader.js';
import { runCli as run } from '../helpers/cli.js';
import { CACHE_DIR, engine, pluginPath, ROOT } from './support.js';

const test = suite('ticker: a TypeScript plugin');

const trace = join(ROOT, 'test/fixtures/traces/ticker.jsonl');

if (engine.name === 'v8') {
  test('loads with its WASI imports and asks for the memory its JS engine needs', async () => {
    const p = await loadPlugin(pluginPath('ticker'), { engine, cacheDir: CACHE_DIR });
    assert.is(p.abi, '0.1.0');
    assert.ok(p.imports.includes('irq'));
    assert.is(p.manifest.budgets.memoryBytes, 128 << 20);
  });

  test('its golden trace replays: ids, scratch, doorbell irq and ack, ticks on virtual time', async () => {
    const r = await run(['test', pluginPath('ticker'), trace]);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok 15 events/m);
  });
} else {
  test(`the ${engine.name} engine refuses it at load: it imports WASI, which only v8 offers`, async () => {
    const err = await loadPlugin(pluginPath('ticker'), { engine, cacheDir: CACHE_DIR }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, PluginError);
    assert.is((err as PluginError).kind, 'unsupported');
    assert.is((err as PluginError).export, 'load');
    assert.match((err as PluginError).message, /wasi:/);
    assert.match((err as PluginError).message, /componentize-js\) run on the v8 engine/);
  });

  test(`vfiobox test --engine ${engine.name} refuses it and points at the v8 engine`, async () => {
    const r = await run(['test', pluginPath('ticker'), trace, '--engine', engine.name]);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /unsupported: imports WASI/);
    assert.match(r.stderr, /--engine v8/);
  });
}

test('a WASI interface the shim does not know is refused at load', () => {
  const names = {
    imports: ['vfiobox:device/irq@0.1.0', 'wasi:keyvalue/store@0.2.0'],
    exports: ['vfiobox:device/device@0.1.0'],
  };
  try {
    readAbi('x', names);
    assert.unreachable('accepted wasi:keyvalue/store');
  } catch (err) {
    assert.instance(err, PluginError);
    assert.is((err as PluginError).kind, 'unsupported');
  }
});

test.run();

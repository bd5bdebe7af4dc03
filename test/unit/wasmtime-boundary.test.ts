// SPDX-License-Identifier: MIT
// The TypeScript half of the wasmtime engine (host/plugins/engines/wasmtime.ts) over a fake
// native side: what it refuses before the native side is asked, what it passes down (the
// artifact's cache path included), and how every NativeWasmFailure becomes a WitError or a
// PluginError (engine.ts's error boundary). The real native side is tested by the
// plugins-wasmtime tier (test/plugins/wasmtime.test.ts, and every plugins file on wasmtime).
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import type { HostImports, PluginInstance } from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import { wasmtimeEngineOver } from '../../host/plugins/engines/wasmtime.js';
import type {
  NativeWasmInstance,
  NativeWasmInstanceOptions,
  NativeWasmtime,
} from '../../host/plugins/engines/wasmtime-native.js';
import { encodeLeb } from '../../host/plugins/wasm-binary.js';
import { thrown } from '../helpers/thrown.js';

const test = suite('wasmtime engine boundary (fake native side)');

// ---- a minimal component: the names readAbi reads and one core module with one memory ----

const utf8 = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const section = (id: number, body: Uint8Array) =>
  cat(Uint8Array.of(id), encodeLeb(body.length), body);
const name = (s: string) => cat(Uint8Array.of(0x00), encodeLeb(utf8(s).length), utf8(s));

/** A component importing `imports` (instances), exporting device@0.1.0, memory of `pages`. */
function component(imports: string[], pages = 1): Uint8Array {
  const coreModule = cat(
    Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00),
    section(5, cat(Uint8Array.of(1, 0x00), encodeLeb(pages))),
  );
  const importBody = cat(
    encodeLeb(imports.length),
    ...imports.map((i) => cat(name(i), Uint8Array.of(0x05, 0x00))),
  );
  const exportBody = cat(
    encodeLeb(1),
    name('vfiobox:device/device@0.1.0'),
    Uint8Array.of(0x05, 0x00, 0x00),
  );
  return cat(
    Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00),
    section(1, coreModule),
    section(10, importBody),
    section(11, exportBody),
  );
}

const EDU_LIKE = component(['vfiobox:device/irq@0.1.0', 'vfiobox:device/log@0.1.0']);

// ---- the fake native side ----

function failure(kind: 'wit' | 'trap' | 'invalid', message: string, code?: string): Error {
  return Object.assign(new Error(message), { vfioboxKind: kind, ...(code ? { code } : {}) });
}

/** One instance whose next call throws `fail` (once) and counts what reached it. */
class FakeInstance implements NativeWasmInstance {
  fail: Error | undefined;
  calls = 0;
  disposed = 0;
  areas: NativeWasmInstance['memoryAreas'] = () => undefined;
  bytes = 65536;
  #call<T>(value: T): T {
    this.calls++;
    const fail = this.fail;
    this.fail = undefined;
    if (fail) throw fail;
    return value;
  }
  describe = () => this.#call({}) as ReturnType<NativeWasmInstance['describe']>;
  configRead = () => this.#call(0x5a);
  configWrite = () => this.#call(undefined);
  regionRead = () => this.#call(7n);
  regionWrite = () => this.#call(undefined);
  reset = () => this.#call(undefined);
  timer = () => this.#call(undefined);
  // a plain Uint8Array, as the native side returns
  saveState = () => this.#call(new Uint8Array([1, 2, 3, 4]));
  loadState = () => this.#call(undefined);
  streamReady = () => this.#call(undefined);
  memoryAreas = () => this.#call(this.areas());
  memoryBytes = () => this.bytes;
  dispose = () => void this.disposed++;
}

interface Fake extends NativeWasmtime {
  compiles: Array<{ cachePath: string | undefined; existed: boolean }>;
  instantiations: NativeWasmInstanceOptions[];
  instance: FakeInstance;
  compileFailure?: Error;
  instantiateFailure?: Error;
}

/** compile writes `artifact` to the cache path when it is absent, as the native side does. */
function fakeNative(artifact = utf8('compiled machine code')): Fake {
  const fake: Fake = {
    version: '48.0.8',
    compiles: [],
    instantiations: [],
    instance: new FakeInstance(),
    async compile(_bytes, cachePath) {
      const existed = cachePath !== undefined && existsSync(cachePath);
      fake.compiles.push({ cachePath, existed });
      if (fake.compileFailure) throw fake.compileFailure;
      if (cachePath && !existed) writeFileSync(cachePath, artifact);
      return {
        instantiate(_host, options) {
          fake.instantiations.push(options);
          if (fake.instantiateFailure) throw fake.instantiateFailure;
          return fake.instance;
        },
      };
    },
  };
  return fake;
}

const host = {} as HostImports;
let cacheDir = '';

test.before.each(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'vfiobox-wt-unit-'));
});
test.after.each(() => {
  rmSync(cacheDir, { recursive: true, force: true });
});

async function setup(fake = fakeNative()) {
  const engine = wasmtimeEngineOver(() => fake);
  const plugin = await engine.compile(EDU_LIKE, { cacheDir, name: 'edu' });
  return { fake, engine, plugin };
}

async function instance(fake = fakeNative()) {
  const { plugin } = await setup(fake);
  return { fake, dev: plugin.instantiate(host, { memoryBytes: 1 << 20, budgetMs: 25 }) };
}

async function rejection(p: Promise<unknown>): Promise<PluginError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, PluginError);
  return err as PluginError;
}

// ---- compile ----

test('compile reads the ABI and world itself and caches under wasmtime-<version>/<sha256>.cwasm', async () => {
  const { fake, plugin } = await setup();
  assert.is(plugin.engine, 'wasmtime');
  assert.is(plugin.abi, '0.1.0');
  assert.is(plugin.world, 'emulated-device');
  assert.equal([...plugin.imports].sort(), ['irq', 'log']);
  assert.equal(readdirSync(cacheDir), ['wasmtime-48.0.8']);
  const path = fake.compiles[0]?.cachePath ?? '';
  assert.match(path, /wasmtime-48\.0\.8\/[0-9a-f]{64}\.cwasm$/);
  await setup(fake);
  assert.equal(
    fake.compiles.map((c) => [c.cachePath, c.existed]),
    [
      [path, false],
      [path, true],
    ],
    'the second compile is handed the artifact the first wrote',
  );
});

test('a cache directory that cannot be made costs the cache, not the compile', async () => {
  const fake = fakeNative();
  const blocked = join(cacheDir, 'file');
  writeFileSync(blocked, 'not a directory');
  const engine = wasmtimeEngineOver(() => fake);
  await engine.compile(EDU_LIKE, { cacheDir: blocked, name: 'edu' });
  assert.equal(fake.compiles, [{ cachePath: undefined, existed: false }]);
});

test('a component importing WASI is refused before the native side is asked, naming v8', async () => {
  const fake = fakeNative();
  const engine = wasmtimeEngineOver(() => fake);
  const wasi = component(['vfiobox:device/irq@0.1.0', 'wasi:cli/stdout@0.2.3']);
  const err = await rejection(engine.compile(wasi, { cacheDir, name: 'ticker' }));
  assert.is(err.kind, 'unsupported');
  assert.is(err.export, 'load');
  assert.match(err.message, /imports WASI \(wasi:cli\/stdout@0\.2\.3\)/);
  assert.match(err.message, /WASI-importing plugins \(componentize-js\) run on the v8 engine/);
  assert.equal(fake.compiles, []);
});

test('a native compile failure is PluginError load invalid; bytes that are no component too', async () => {
  const fake = fakeNative();
  fake.compileFailure = failure('invalid', 'the component has 3 core modules');
  const engine = wasmtimeEngineOver(() => fake);
  const err = await rejection(engine.compile(EDU_LIKE, { cacheDir, name: 'edu' }));
  assert.equal([err.kind, err.export], ['invalid', 'load']);
  assert.match(err.message, /3 core modules/);
  const core = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
  assert.is((await rejection(engine.compile(core, { cacheDir }))).kind, 'invalid');
});

// ---- instantiate ----

test('instantiate passes the ABI, the cap and the budget (default 0: none) down', async () => {
  const { fake, plugin } = await setup();
  plugin.instantiate(host, { memoryBytes: 1 << 20, budgetMs: 25 });
  plugin.instantiate(host, { memoryBytes: 2 << 20 });
  assert.equal(fake.instantiations, [
    { abi: '0.1.0', memoryBytes: 1 << 20, budgetMs: 25 },
    { abi: '0.1.0', memoryBytes: 2 << 20, budgetMs: 0 },
  ]);
});

test('bad limits are RangeErrors; a cap below the memory minimum is denied up front', async () => {
  const { fake, plugin } = await setup();
  assert.instance(
    thrown(() => plugin.instantiate(host, { memoryBytes: -1 })),
    RangeError,
  );
  assert.instance(
    thrown(() => plugin.instantiate(host, { memoryBytes: 1 << 20, budgetMs: 1.5 })),
    RangeError,
  );
  const denied = thrown(() => plugin.instantiate(host, { memoryBytes: 1000 })) as PluginError;
  assert.instance(denied, PluginError);
  assert.is(denied.kind, 'denied');
  assert.match(denied.message, /65536 bytes .* cap of 1000 bytes/);
  assert.equal(fake.instantiations, [], 'the native side was never asked');
});

test("a native instantiation failure keeps the native side's kind", async () => {
  const { fake, plugin } = await setup();
  fake.instantiateFailure = failure('trap', 'wasm trap in _initialize');
  const trap = thrown(() => plugin.instantiate(host, { memoryBytes: 1 << 20 })) as PluginError;
  assert.equal([trap.kind, trap.export], ['trap', 'instantiate']);
  fake.instantiateFailure = failure('invalid', 'unknown import vfiobox:device/gpu@0.1.0');
  const link = thrown(() => plugin.instantiate(host, { memoryBytes: 1 << 20 })) as PluginError;
  assert.equal([link.kind, link.export], ['invalid', 'instantiate']);
});

// ---- calls ----

test('a returned err of region-read/region-write/load-state becomes WitError; the instance lives', async () => {
  const { fake, dev } = await instance();
  fake.instance.fail = failure('wit', 'out-of-range', 'out-of-range');
  assert.is((thrown(() => dev.regionRead(0, 0n, 4)) as WitError).code, 'out-of-range');
  fake.instance.fail = failure('wit', 'not-granted', 'not-granted');
  assert.is((thrown(() => dev.regionWrite(0, 0n, 4, 0n)) as WitError).code, 'not-granted');
  fake.instance.fail = failure(
    'wit',
    'edu: state has the wrong size',
    'edu: state has the wrong size',
  );
  const state = thrown(() => dev.loadState(new Uint8Array(3)));
  assert.instance(state, WitError);
  assert.is((state as WitError).code, 'edu: state has the wrong size');
  assert.is(dev.regionRead(0, 0n, 4), 7n);
});

test("an err that is no case of the export's enum is a fault, not a WitError", async () => {
  const { fake, dev } = await instance();
  fake.instance.fail = failure('wit', 'bogus', 'bogus');
  const err = thrown(() => dev.regionRead(0, 0n, 4));
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'trap');
});

test('a trap poisons: later calls throw without reaching the native instance', async () => {
  const { fake, dev } = await instance();
  fake.instance.fail = failure('trap', 'wasm trap: wasm `unreachable` instruction executed');
  const err = thrown(() => dev.timer(3)) as PluginError;
  assert.equal([err.kind, err.export], ['trap', 'timer']);
  assert.match(err.message, /unreachable/);
  const calls = fake.instance.calls;
  const later = thrown(() => dev.regionRead(0, 0n, 4)) as PluginError;
  assert.equal([later.kind, later.export], ['trap', 'region-read']);
  assert.match(later.message, /poisoned by an earlier fault \(edu:timer: trap: wasm trap/);
  assert.is(fake.instance.calls, calls);
});

test('kind invalid is PluginError invalid; anything else thrown is a trap', async () => {
  const a = await instance();
  a.fake.instance.fail = failure('invalid', 'the instance is disposed');
  assert.is((thrown(() => a.dev.reset()) as PluginError).kind, 'invalid');
  const b = await instance();
  b.fake.instance.fail = new TypeError('width: expected 1, 2, 4 or 8');
  const err = thrown(() => b.dev.regionRead(0, 0n, 4)) as PluginError;
  assert.is(err.kind, 'trap');
  assert.match(err.message, /TypeError: width/);
});

test('a trap with the memory at its cap says so', async () => {
  const { fake, dev } = await instance();
  fake.instance.bytes = 1 << 20;
  fake.instance.fail = failure('trap', 'wasm trap: wasm `unreachable` instruction executed');
  const err = thrown(() => dev.regionRead(0, 0x14n, 4)) as PluginError;
  assert.match(err.message, /\(linear memory at its cap of 1048576 bytes\)$/);
});

test('memoryAreas: none exported is []; memoryBytes delegates', async () => {
  const { fake, dev } = await instance();
  assert.equal(dev.memoryAreas?.(), []);
  fake.instance.areas = () => [{ bar: 2, offset: 0n, lengthBytes: 4096n }];
  assert.equal(dev.memoryAreas?.(), [{ bar: 2, offset: 0n, lengthBytes: 4096n }]);
  fake.instance.bytes = 131072;
  assert.is(dev.memoryBytes?.(), 131072);
});

test('dispose is idempotent, drops the store, and later calls say disposed', async () => {
  const { fake, dev } = await instance();
  dev.dispose();
  dev.dispose();
  assert.ok(fake.instance.disposed >= 1);
  const err = thrown(() => dev.describe()) as PluginError;
  assert.equal([err.kind, err.export], ['invalid', 'describe']);
  assert.match(err.message, /disposed/);
  assert.is(dev.memoryBytes?.(), 0);
  assert.is(fake.instance.calls, 0);
});

test('native is the native instance while live, undefined once poisoned or disposed', async () => {
  const a = await instance();
  assert.is(a.dev.native, a.fake.instance);
  a.fake.instance.fail = failure('trap', 'wasm trap');
  thrown(() => a.dev.reset());
  assert.is(a.dev.native, undefined);
  const b = await instance();
  b.dev.dispose();
  assert.is(b.dev.native, undefined);
});

const calls: Array<[string, (d: PluginInstance) => unknown]> = [
  ['describe', (d) => d.describe()],
  ['config-read', (d) => d.configRead(0, 4)],
  ['config-write', (d) => d.configWrite(0, 4, 0)],
  ['region-read', (d) => d.regionRead(0, 0n, 4)],
  ['region-write', (d) => d.regionWrite(0, 0n, 4, 0n)],
  ['reset', (d) => d.reset()],
  ['timer', (d) => d.timer(0)],
  ['save-state', (d) => d.saveState()],
  ['load-state', (d) => d.loadState(new Uint8Array(4))],
  ['stream-ready', (d) => d.streamReady()],
  ['memory-areas.areas', (d) => d.memoryAreas?.()],
];

test('every export names itself (WIT spelling) in the PluginError of its trap', async () => {
  for (const [exportName, call] of calls) {
    const { fake, dev } = await instance();
    fake.instance.fail = failure('trap', 'wasm trap');
    assert.is((thrown(() => call(dev)) as PluginError).export, exportName);
  }
});

test.run();

// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import { readAbi, SUPPORTED_ABI } from '../../host/plugins/abi.js';
import { loadPlugin } from '../../host/plugins/loader.js';
import { CACHE_DIR, engine, pluginBytes, pluginPath } from './support.js';

const test = suite('plugin ABI');

const v = (iface: string, version = '0.1.0') => `vfiobox:device/${iface}@${version}`;

function refusal(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, PluginError);
    return err as PluginError;
  }
  assert.unreachable('expected a PluginError');
  throw new Error('unreachable');
}

test('the supported range is 0.1.0..0.1.2', () => {
  assert.equal({ ...SUPPORTED_ABI }, { min: '0.1.0', max: '0.1.2' });
});

test('names of one supported version give the ABI, world and capability imports', () => {
  const abi = readAbi('p', {
    imports: [v('types'), v('irq'), v('dma'), v('byte-stream')],
    exports: [v('device')],
  });
  assert.equal(abi, {
    abi: '0.1.0',
    world: 'emulated-device',
    imports: ['irq', 'dma', 'byte-stream'],
    exports: ['device'],
  });
});

test('a region import makes the world passthrough-variant', () => {
  const abi = readAbi('p', { imports: [v('region'), v('irq')], exports: [v('device')] });
  assert.is(abi.world, 'passthrough-variant');
});

test('a memory-areas export (0.1.1) makes the world emulated-device-with-memory', () => {
  const v1 = (iface: string) => v(iface, '0.1.1');
  const withImport = readAbi('m', {
    imports: [v1('types'), v1('shared-memory')],
    exports: [v1('memory-areas'), v1('device')],
  });
  assert.is(withImport.abi, '0.1.1');
  assert.is(withImport.world, 'emulated-device-with-memory');
  // a component lists only the imports its code calls: the export decides
  const exportOnly = readAbi('m', { imports: [], exports: [v1('memory-areas'), v1('device')] });
  assert.is(exportOnly.world, 'emulated-device-with-memory');
  assert.is(
    readAbi('e', { imports: [v1('irq')], exports: [v1('device')] }).world,
    'emulated-device',
  );
});

test('shared-memory without memory-areas, memory with region, or either in 0.1.0 is refused', () => {
  const v1 = (iface: string) => v(iface, '0.1.1');
  const half = refusal(() =>
    readAbi('h', { imports: [v1('shared-memory')], exports: [v1('device')] }),
  );
  assert.is(half.kind, 'invalid');
  assert.match(half.message, /exports no memory-areas/);
  const both = refusal(() =>
    readAbi('b', { imports: [v1('region')], exports: [v1('memory-areas'), v1('device')] }),
  );
  assert.is(both.kind, 'unsupported');
  const old = refusal(() =>
    readAbi('o', { imports: [v('shared-memory')], exports: [v('device')] }),
  );
  assert.match(old.message, /import shared-memory: not part of vfiobox:device@0\.1\.0/);
});

test('a newer version is refused as unsupported, naming it and the supported range', () => {
  const err = refusal(() =>
    readAbi('future', { imports: [v('irq', '0.2.0')], exports: [v('device', '0.2.0')] }),
  );
  assert.is(err.kind, 'unsupported');
  assert.match(err.message, /vfiobox:device@0\.2\.0/);
  assert.match(err.message, /0\.1\.0\.\.0\.1\.2/);
});

test('0.1.2 (DMA windows: new dma functions, no new interface) loads with the interfaces of 0.1.1', () => {
  const v2 = (iface: string) => v(iface, '0.1.2');
  const abi = readAbi('w', {
    imports: [v2('types'), v2('irq'), v2('dma'), v2('log'), v2('clock')],
    exports: [v2('device')],
  });
  assert.equal(abi, {
    abi: '0.1.2',
    world: 'emulated-device',
    imports: ['irq', 'dma', 'log', 'clock'],
    exports: ['device'],
  });
  const memory = readAbi('m', {
    imports: [v2('dma'), v2('shared-memory')],
    exports: [v2('memory-areas'), v2('device')],
  });
  assert.is(memory.world, 'emulated-device-with-memory');
  const passthrough = readAbi('p', { imports: [v2('region'), v2('dma')], exports: [v2('device')] });
  assert.is(passthrough.world, 'passthrough-variant');
});

test('the patch after the maximum (0.1.3, what next/ builds as) is refused as unsupported', () => {
  const err = refusal(() =>
    readAbi('next', { imports: [v('dma', '0.1.3')], exports: [v('device', '0.1.3')] }),
  );
  assert.is(err.kind, 'unsupported');
  assert.match(
    err.message,
    /built against vfiobox:device@0\.1\.3; this host supports 0\.1\.0\.\.0\.1\.2/,
  );
});

test('an older version is refused the same way', () => {
  const err = refusal(() => readAbi('old', { imports: [], exports: [v('device', '0.0.9')] }));
  assert.is(err.kind, 'unsupported');
  assert.match(err.message, /@0\.0\.9.*0\.1\.0\.\.0\.1\.2/);
});

test('a plugin mixing versions is refused, naming which interface has which version', () => {
  const err = refusal(() =>
    readAbi('mixed', { imports: [v('irq'), v('dma')], exports: [v('device', '0.2.0')] }),
  );
  assert.is(err.kind, 'invalid');
  assert.match(err.message, /0\.1\.0 \(irq, dma\) and 0\.2\.0 \(device\)/);
});

test('a foreign import (a WASI interface the shim does not know) or an unknown interface is refused as unsupported', () => {
  const wasi = refusal(() =>
    readAbi('w', { imports: ['wasi:keyvalue/store@0.2.0'], exports: [v('device')] }),
  );
  assert.is(wasi.kind, 'unsupported');
  assert.match(wasi.message, /wasi:keyvalue\/store@0\.2\.0/);
  const unknown = refusal(() => readAbi('u', { imports: [v('gpu')], exports: [v('device')] }));
  assert.match(unknown.message, /import gpu: not part of vfiobox:device@0\.1\.0/);
});

test('a component without the device export is refused as invalid', () => {
  const err = refusal(() => readAbi('x', { imports: [v('irq')], exports: [] }));
  assert.is(err.kind, 'invalid');
  assert.match(err.message, /no vfiobox:device\/device/);
});

test('the engine refuses a real 0.2.0 component before transpiling it', async () => {
  const err = await engine
    .compile(pluginBytes('abi-future'), { cacheDir: CACHE_DIR, name: 'abi-future' })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'unsupported');
  assert.match((err as PluginError).message, /@0\.2\.0; this host supports 0\.1\.0\.\.0\.1\.2/);
});

test('loadPlugin reports the ABI, world, interfaces and hash of a supported plugin', async () => {
  const loaded = await loadPlugin(pluginPath('edu'), { engine, cacheDir: CACHE_DIR });
  assert.is(loaded.abi, '0.1.0');
  assert.is(loaded.world, 'emulated-device');
  assert.equal(loaded.exports, ['device']);
  assert.is(loaded.sha256.length, 64);
  assert.is(loaded.sizeBytes, pluginBytes('edu').length);
  assert.is(loaded.manifest.name, 'edu');
});

test('a real 0.1.1 component with memory areas loads as emulated-device-with-memory and declares them', async () => {
  const loaded = await loadPlugin(pluginPath('scratchpad'), { engine, cacheDir: CACHE_DIR });
  assert.is(loaded.abi, '0.1.1');
  assert.is(loaded.world, 'emulated-device-with-memory');
  assert.equal(loaded.exports, ['memory-areas', 'device']);
  assert.ok(loaded.manifest.capabilities.sharedMemory);
  const read = () => new Uint8Array(4);
  const noop = () => undefined;
  const host = {
    irq: { raise: noop, lower: noop, isMasked: () => true },
    dma: { read, write: noop },
    log: { log: noop },
    clock: { nowNs: () => 0n, setTimer: noop, cancelTimer: noop },
    byteStream: { write: () => 0, read: () => new Uint8Array(0) },
  };
  const limits = { memoryBytes: 1 << 20 };
  // the world needs its shared-memory import: an instance without it is refused
  const denied = refusal(() => loaded.compiled.instantiate(host, limits));
  assert.is(denied.kind, 'denied');
  const inst = loaded.compiled.instantiate(
    { ...host, sharedMemory: { read, write: noop } },
    limits,
  );
  assert.equal(inst.memoryAreas?.(), [{ bar: 2, offset: 0n, lengthBytes: 4096n }]);
  inst.dispose();
});

test.run();

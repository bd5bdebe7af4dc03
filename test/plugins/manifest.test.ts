// SPDX-License-Identifier: MIT
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../host/errors.js';
import { parseManifest, readManifest } from '../../host/plugins/manifest.js';
import { pluginBytes, pluginPath } from './support.js';

const test = suite('manifest');

const VALID = {
  name: 'edu',
  version: '1.0.0',
  ids: [{ vendor: '0x1234', device: '0x11e8', subvendor: '*' }],
  capabilities: {
    irq: { vectors: [1, 0, 1] },
    dma: [{ iova: '0x100000', sizeBytes: 4096, access: 'r' }],
    log: true,
  },
  budgets: { accessUs: 100 },
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ConfigError);
    return err as ConfigError;
  }
  assert.unreachable('expected a ConfigError');
  throw new Error('unreachable');
}

test('a valid manifest parses with defaults for what it does not request', () => {
  const m = parseManifest(VALID, 'm.json');
  assert.is(m.name, 'edu');
  assert.is(m.description, '');
  assert.equal(m.ids, [{ vendor: 0x1234, device: 0x11e8, subvendor: '*' }]);
  assert.equal(m.capabilities, {
    irq: { vectors: [0, 1] },
    dma: [{ iova: 0x100000n, sizeBytes: 4096n, access: 'r' }],
    regions: [],
    log: true,
    clock: false,
    byteStream: false,
    sharedMemory: false,
  });
  assert.equal(m.budgets, { accessUs: 100 });
});

test('errors name the file, the field path, what was expected and what was found', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...VALID, name: 'Edu!' }, /m\.json: name: expected a name of a-z.*got "Edu!"/],
    [{ ...VALID, version: 1 }, /version: expected a semver x\.y\.z, got 1/],
    [
      { ...VALID, capabilities: { irq: { vectors: [0, '1'] } } },
      /capabilities\.irq\.vectors\[1\]: expected an integer 0\.\.2047, got "1"/,
    ],
    [
      { ...VALID, capabilities: { dma: 'some' } },
      /capabilities\.dma: expected "none", "all" or an array/,
    ],
    [
      { ...VALID, capabilities: { dma: [{ iova: -1, sizeBytes: 1 }] } },
      /capabilities\.dma\[0\]\.iova: expected a 64-bit unsigned integer/,
    ],
    [{ ...VALID, capabilites: {} }, /capabilites: expected no such field \(known: name, /],
    [
      { ...VALID, ids: [{ vendor: 0x12345 }] },
      /ids\[0\]: expected a valid id entry.*ids\[0\]\.vendor/,
    ],
    [
      { ...VALID, budgets: { memoryBytes: 10 } },
      /budgets\.memoryBytes: expected an integer 65536\.\./,
    ],
    [[], /\(top level\): expected an object, got \[\]/],
  ];
  for (const [json, message] of cases) {
    const err = configError(() => parseManifest(json, 'm.json'));
    assert.is(err.code, 'ERR_VFIOBOX_MANIFEST');
    assert.match(err.message, message);
  }
});

test('the embedded vfiobox:manifest section is read from a built plugin', () => {
  const found = readManifest(pluginBytes('hostile'), pluginPath('hostile'));
  assert.is(found.source, 'embedded');
  assert.is(found.manifest.name, 'hostile');
  assert.equal(found.manifest.capabilities.irq, { vectors: [0, 1] });
});

test('without a section, a sidecar <name>.manifest.json is read; without one, nothing is requested', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-manifest-'));
  try {
    const wasm = join(dir, 'plain.wasm');
    copyFileSync(pluginPath('hostile-describe'), wasm);
    const bytes = pluginBytes('hostile-describe');
    const none = readManifest(bytes, wasm);
    assert.is(none.source, 'none');
    assert.is(none.manifest.name, 'plain');
    assert.equal(none.manifest.capabilities.irq, { vectors: [] });
    assert.is(none.manifest.capabilities.dma, 'none');
    writeFileSync(
      join(dir, 'plain.manifest.json'),
      JSON.stringify({ name: 'plain', version: '0.0.1' }),
    );
    const sidecar = readManifest(bytes, wasm);
    assert.is(sidecar.source, 'sidecar');
    assert.is(sidecar.sidecarPath, join(dir, 'plain.manifest.json'));
    writeFileSync(join(dir, 'plain.manifest.json'), '{ "name": ');
    const err = configError(() => readManifest(bytes, wasm));
    assert.match(err.message, /plain\.manifest\.json: not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

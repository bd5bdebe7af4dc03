// SPDX-License-Identifier: MIT
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../host/errors.js';
import { grantFromManifest } from '../../host/plugins/grants.js';
import { type Manifest, parseManifest } from '../../host/plugins/manifest.js';
import { loadPolicy, parsePolicy } from '../../host/plugins/policy.js';

const test = suite('policy');

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

const manifest: Manifest = parseManifest(
  {
    name: 'edu',
    version: '1.0.0',
    capabilities: {
      irq: { vectors: [0, 1] },
      dma: [{ iova: '0x10000', sizeBytes: '0x10000', access: 'rw' }],
      regions: [{ bar: 0, offset: 0, lengthBytes: 0x100 }],
      log: true,
      clock: true,
    },
  },
  'edu manifest',
);

function policy(entry: unknown, unlisted = 'requested') {
  return parsePolicy({ unlisted, plugins: { edu: entry } }, 'policy.json');
}

test('without a policy the grant is what the manifest requests', () => {
  const g = grantFromManifest(manifest);
  assert.equal(g.irqVectors, [0, 1]);
  assert.equal(g.dma, [{ iova: 0x10000n, sizeBytes: 0x10000n, access: 'rw' }]);
  assert.is(g.byteStream, false);
});

test('a policy narrows each capability it names and keeps the others', () => {
  const g = grantFromManifest(
    manifest,
    policy({
      capabilities: {
        irq: { vectors: [1, 7] },
        dma: [{ iova: '0x18000', sizeBytes: '0x100000', access: 'r' }],
        log: false,
      },
      logLinesPerSecond: 3,
    }),
  );
  assert.equal(g.irqVectors, [1]);
  assert.equal(g.dma, [{ iova: 0x18000n, sizeBytes: 0x8000n, access: 'r' }]);
  assert.is(g.log, false);
  assert.is(g.clock, true);
  assert.equal(g.regions, [{ bar: 0, offset: 0n, lengthBytes: 0x100n }]);
  assert.is(g.logLinesPerSecond, 3);
});

test('a policy can never widen: "all" and extra capabilities stay within the request', () => {
  const g = grantFromManifest(
    manifest,
    policy({
      capabilities: {
        irq: { vectors: 'all' },
        dma: 'all',
        regions: [{ bar: 0, offset: 0x80, lengthBytes: 0x1000 }],
        byteStream: true,
      },
    }),
  );
  assert.equal(g.irqVectors, [0, 1]);
  assert.equal(g.dma, [{ iova: 0x10000n, sizeBytes: 0x10000n, access: 'rw' }]);
  assert.equal(g.regions, [{ bar: 0, offset: 0x80n, lengthBytes: 0x80n }]);
  assert.is(g.byteStream, false, 'not requested, so not granted');
});

test('disjoint windows or accesses leave no DMA at all', () => {
  const g = grantFromManifest(
    manifest,
    policy({ capabilities: { dma: [{ iova: '0x10000', sizeBytes: 16, access: 'w' }] } }),
  );
  assert.equal(g.dma, [{ iova: 0x10000n, sizeBytes: 16n, access: 'w' }]);
  const none = grantFromManifest(
    manifest,
    policy({ capabilities: { dma: [{ iova: '0x900000', sizeBytes: 16 }] } }),
  );
  assert.is(none.dma, 'none');
});

test('unlisted plugins get their request, or nothing under unlisted: "deny"', () => {
  const other = parsePolicy({ plugins: { serial: {} } }, 'p.json');
  assert.equal(grantFromManifest(manifest, other).irqVectors, [0, 1]);
  const deny = parsePolicy({ unlisted: 'deny', plugins: {} }, 'p.json');
  const g = grantFromManifest(manifest, deny);
  assert.equal([g.irqVectors, g.dma, g.regions, g.log, g.clock], [[], 'none', [], false, false]);
});

test('a pinned plugin with a different sha256 is refused, naming both hashes', () => {
  const pinned = policy({ sha256: SHA_A.toUpperCase() });
  assert.equal(grantFromManifest(manifest, pinned, SHA_A).irqVectors, [0, 1]);
  for (const sha of [SHA_B, undefined]) {
    try {
      grantFromManifest(manifest, pinned, sha);
      assert.unreachable('expected the pin to refuse');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).code, 'ERR_VFIOBOX_PLUGIN_PIN');
      assert.match(
        (err as ConfigError).message,
        new RegExp(`pinned by policy.json to sha256 ${SHA_A}`),
      );
      if (sha) assert.match((err as ConfigError).message, new RegExp(`file's sha256 is ${SHA_B}`));
    }
  }
});

test('policy errors name the file and the field path', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ unlisted: 'maybe' }, /p\.json: unlisted: expected "requested" or "deny", got "maybe"/],
    [
      { plugins: { edu: { sha256: 'abc' } } },
      /plugins\.edu\.sha256: expected a sha256 of 64 hex digits/,
    ],
    [
      { plugins: { edu: { capabilities: { irq: { vectors: [5000] } } } } },
      /plugins\.edu\.capabilities\.irq\.vectors\[0\]: expected an integer 0\.\.2047, got 5000/,
    ],
    [{ plugins: { edu: { grant: true } } }, /plugins\.edu\.grant: expected no such field/],
  ];
  for (const [json, message] of cases) {
    try {
      parsePolicy(json, 'p.json');
      assert.unreachable('expected a ConfigError');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).code, 'ERR_VFIOBOX_POLICY');
      assert.match((err as ConfigError).message, message);
    }
  }
});

test('loadPolicy reads a file and reports a missing one as a ConfigError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-policy-'));
  try {
    const path = join(dir, 'policy.json');
    writeFileSync(path, JSON.stringify({ plugins: { edu: { sha256: SHA_A } } }));
    const p = await loadPolicy(path);
    assert.is(p.source, path);
    assert.is(p.plugins.edu?.sha256, SHA_A);
    const err = await loadPolicy(join(dir, 'missing.json')).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, ConfigError);
    assert.match((err as ConfigError).message, /missing\.json: not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

// SPDX-License-Identifier: MIT
// `vfiobox match`: the bundled plugins' manifests as id tables, fewest wildcards wins, a tie
// between two plugins is ambiguous (exit 1), no match is exit 1.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIds } from '../../host/cli/commands/match.js';
import { runCli as run } from '../helpers/cli.js';
import { pluginPath } from './support.js';

const test = suite('vfiobox match');

function pluginDir(names: Array<[string, string]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-match-'));
  for (const [plugin, as] of names) copyFileSync(pluginPath(plugin), join(dir, `${as}.wasm`));
  return dir;
}

test('--ids parses vendor:device, subsystem and class', () => {
  assert.equal(parseIds('1234:11e8:1af4:1100/00ff00'), {
    vendorId: 0x1234,
    deviceId: 0x11e8,
    subsystemVendorId: 0x1af4,
    subsystemDeviceId: 0x1100,
    classCode: 0x00ff00,
  });
});

test('the edu ids pick edu.wasm and the UART ids pick serial16550.wasm', async () => {
  const dir = pluginDir([
    ['edu', 'edu'],
    ['serial16550', 'serial16550'],
  ]);
  try {
    const edu = await run(['match', '--ids', '1234:11e8', '--plugins', dir, '--json']);
    assert.is(edu.code, 0, edu.stderr);
    const r = JSON.parse(edu.stdout) as { kind: string; owner: string; wildcards: number };
    assert.is(r.kind, 'match');
    assert.is(r.owner, join(dir, 'edu.wasm'));
    const uart = await run(['match', '--ids', '1b36:0002/070002', '--plugins', dir]);
    assert.is(uart.code, 0, uart.stderr);
    assert.match(uart.stdout, /match {2}.*serial16550\.wasm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two plugins with equally specific entries are ambiguous, never guessed', async () => {
  const dir = pluginDir([
    ['edu', 'edu-a'],
    ['edu', 'edu-b'],
  ]);
  try {
    const r = await run(['match', '--ids', '1234:11e8', '--plugins', dir]);
    assert.is(r.code, 1);
    assert.match(r.stdout, /ambiguous: 2 entries tie/);
    assert.match(r.stdout, /edu-a\.wasm/);
    assert.match(r.stdout, /edu-b\.wasm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no matching plugin exits 1 and says so; bad --ids is a usage error', async () => {
  const dir = pluginDir([['edu', 'edu']]);
  try {
    const none = await run(['match', '--ids', '8086:10d3', '--plugins', dir]);
    assert.is(none.code, 1);
    assert.match(none.stdout, /no plugin in .* claims it/);
    const bad = await run(['match', '--ids', 'edu', '--plugins', dir]);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /--ids must look like/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

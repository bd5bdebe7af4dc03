// SPDX-License-Identifier: MIT
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli as run } from '../helpers/cli.js';
import { pluginBytes, pluginPath } from './support.js';

const test = suite('vfiobox inspect');

/** `key  value` lines of the text output, as a map. */
function fields(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        const m = /^(\s*\S+)\s+(.*)$/.exec(l);
        return [m?.[1]?.trim() ?? l, m?.[2] ?? ''] as [string, string];
      }),
  );
}

test('shows ABI, world, interfaces, ids, capabilities, size and sha256 of a plugin', async () => {
  const path = pluginPath('hostile');
  const r = await run(['inspect', path]);
  assert.is(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  assert.is(
    f.get('plugin'),
    'hostile 0.1.0 (hostile fixture: traps, loops, bombs and out-of-grant calls on request)',
  );
  assert.is(f.get('abi'), 'vfiobox:device@0.1.2 (host supports 0.1.0..0.1.2)');
  assert.is(f.get('world'), 'emulated-device');
  assert.is(f.get('exports'), 'device');
  assert.is(f.get('imports'), 'types, irq, dma, log, clock');
  assert.is(f.get('manifest'), 'embedded (vfiobox:manifest section)');
  assert.is(f.get('ids'), '1234:bad0 sub *:*');
  assert.is(f.get('irq'), 'vectors 0,1');
  assert.is(f.get('dma'), '0x10000+0x10000 rw');
  assert.is(f.get('byte-stream'), 'no');
  assert.is(f.get('size'), `${pluginBytes('hostile').length} bytes`);
  assert.match(f.get('sha256') ?? '', /^[0-9a-f]{64}$/);
});

test('--json prints one object with full interface names and hex addresses', async () => {
  const r = await run(['inspect', pluginPath('hostile'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    abi: string;
    imports: string[];
    exports: string[];
    manifestSource: string;
    manifest: { capabilities: { dma: Array<{ iova: string }> } };
  };
  assert.is(report.abi, '0.1.2');
  assert.ok(report.imports.includes('vfiobox:device/dma@0.1.2'));
  assert.equal(report.exports, ['vfiobox:device/device@0.1.2']);
  assert.is(report.manifestSource, 'embedded');
  assert.is(report.manifest.capabilities.dma[0]?.iova, '0x10000');
});

test('a plugin without a manifest is shown as requesting nothing', async () => {
  const r = await run(['inspect', pluginPath('hostile-describe')]);
  assert.is(r.code, 0, r.stderr);
  assert.is(fields(r.stdout).get('manifest'), 'none (the plugin requests no capabilities)');
});

test('an unsupported ABI is a one-line error naming the versions, exit 1', async () => {
  const r = await run(['inspect', pluginPath('abi-future')]);
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.match(
    r.stderr,
    /^vfiobox: .*abi-future\.wasm: .*built against vfiobox:device@0\.2\.0; this host supports 0\.1\.0\.\.0\.1\.2\n/,
  );
  assert.match(r.stderr, /hint: rebuild the plugin against wit\/vfiobox-device\/0\.1\.2/);
});

test('a bundled plugin by name, as serve takes it: csum asks for DMA and nothing else', async () => {
  const r = await run(['inspect', 'csum']);
  assert.is(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  assert.match(f.get('plugin') ?? '', /^csum 0\.1\.0 \(A checksum offload engine/);
  assert.is(f.get('abi'), 'vfiobox:device@0.1.2 (host supports 0.1.0..0.1.2)');
  assert.is(f.get('imports'), 'types, dma');
  assert.is(f.get('dma'), 'all');
  const unknown = await run(['inspect', 'no-such-plugin']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /no bundled plugin 'no-such-plugin' \(bundled: edu, .*csum\)/);
});

test('a missing file and a file that is not a component are clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-inspect-'));
  try {
    const missing = await run(['inspect', join(dir, 'nope.wasm')]);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /^vfiobox: plugin file .*nope\.wasm: not found\n$/);
    const text = join(dir, 'text.wasm');
    writeFileSync(text, 'hello\n');
    const notWasm = await run(['inspect', text]);
    assert.is(notWasm.code, 1);
    assert.match(notWasm.stderr, /text\.wasm: not a WebAssembly component/);
    const core = join(dir, 'core.wasm');
    writeFileSync(core, Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0));
    assert.match((await run(['inspect', core])).stderr, /a core wasm module, not a component/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no file argument is a usage error (exit 2)', async () => {
  const r = await run(['inspect']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /inspect needs a plugin file/);
});

test.run();

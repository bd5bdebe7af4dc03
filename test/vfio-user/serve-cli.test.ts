// SPDX-License-Identifier: MIT
// `vfiobox serve` as a user runs it (the bundled CLI in a child process): several instances of
// one plugin in one process, each on its own socket with its own state (mediated-device style),
// a plain event log, and a clean SIGTERM that removes the sockets and prints final stats.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import { ROOT } from '../plugins/support.js';

const test = suite('vfiobox serve (CLI)');
const LIVENESS = 0x04;

interface Served {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts the CLI and resolves once it printed `listening` for every socket. */
function serve(args: string[], sockets: number): Promise<Served> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/vfiobox.mjs'), 'serve', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if ((err.match(/^listening /gm) ?? []).length === sockets) {
        resolve({ child, stderr: () => err, exited });
      }
    });
    void exited.then((code) => reject(new Error(`serve exited ${code} early: ${err}`)));
  });
}

test('two instances of edu in one process keep separate state; SIGTERM cleans up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-serve-'));
  const base = join(dir, 'edu');
  try {
    const s = await serve(['edu', '--socket', base, '--instances', '2'], 2);
    const a = await VfioUserClient.connect(`${base}.0`);
    const b = await VfioUserClient.connect(`${base}.1`);
    await a.negotiate();
    await b.negotiate();
    await a.write32(0, LIVENESS, 0x1111);
    await b.write32(0, LIVENESS, 0x2222);
    assert.is(await a.read32(0, LIVENESS), ~0x1111 >>> 0);
    assert.is(await b.read32(0, LIVENESS), ~0x2222 >>> 0);
    a.close();
    b.close();
    s.child.kill('SIGTERM');
    assert.is(await s.exited, 0, s.stderr());
    assert.not.ok(existsSync(`${base}.0`), 'socket 0 removed');
    assert.not.ok(existsSync(`${base}.1`), 'socket 1 removed');
    assert.match(s.stderr(), /edu#0: connect/);
    assert.match(s.stderr(), /final: edu#1 /);
    assert.match(s.stderr(), /stopped \(SIGTERM\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing plugin or a bad option is one line with a hint and a non-zero exit', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, [join(ROOT, 'dist/vfiobox.mjs'), 'serve', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      c.once('exit', (code) => resolve({ code, err }));
    });
  const missing = await run(['nosuch', '--socket', '/tmp/x.sock']);
  assert.is(missing.code, 1);
  assert.match(missing.err, /^vfiobox: no bundled plugin 'nosuch'/m);
  assert.match(missing.err, /^hint: name a bundled plugin, or give a path/m);
  const bad = await run(['edu']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /missing --socket PATH/);
  // Thrown in the device worker, carried over comlink: still one line, not an internal error.
  const unbindable = await run(['edu', '--socket', '/nonexistent-dir/edu.sock']);
  assert.is(unbindable.code, 1);
  assert.match(unbindable.err, /^vfiobox: bind: .*\(ENOENT\) path=\/nonexistent-dir\/edu\.sock$/m);
  assert.not.match(unbindable.err, /internal error/);
  assert.match(unbindable.err, /^hint: the socket's directory does not exist/m);
  // A socket somebody is listening on is left alone, with the reason and the fix.
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-serve-cli-'));
  const live = join(dir, 'live.sock');
  const other = createServer(() => undefined);
  await new Promise<void>((resolve) => other.listen(live, resolve));
  try {
    const taken = await run(['edu', '--socket', live]);
    assert.is(taken.code, 1);
    assert.match(taken.err, /^vfiobox: bind: .*\(EADDRINUSE\) path=/m);
    assert.match(taken.err, /^hint: another server is listening on that socket/m);
    assert.ok(existsSync(live), 'the live socket is not unlinked');
  } finally {
    await new Promise((resolve) => other.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

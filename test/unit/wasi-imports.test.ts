// SPDX-License-Identifier: MIT
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginError } from '../../host/errors.js';
import { type LogLevel, WitError } from '../../host/plugins/engine.js';
import {
  isKnownWasiImport,
  MAX_LINE_BYTES,
  WASI_ALLOWED,
  WASI_DENIED,
  type WasiOptions,
  wasiImports,
} from '../../host/plugins/wasi/index.js';
import { thrown } from '../helpers/thrown.js';

const test = suite('wasi imports');

type Fn = (...args: unknown[]) => unknown;
interface Stream {
  write(b: Uint8Array): void;
  blockingWriteAndFlush(b: Uint8Array): void;
  blockingFlush(): void;
  checkWrite(): bigint;
}
interface Pollable {
  ready(): boolean;
  block(): void;
}

function setup(extra: Partial<WasiOptions> = {}) {
  const lines: string[] = [];
  let now = 0n;
  const imports = wasiImports({
    log: (level: LogLevel, message: string) => void lines.push(`${level}: ${message}`),
    name: 'dev',
    monotonicNs: () => now,
    ...extra,
  });
  const call = (iface: string, fn: string, ...args: unknown[]): unknown => {
    const f = (imports[iface] as Record<string, Fn | undefined>)[fn];
    if (typeof f !== 'function') throw new TypeError(`${iface} has no function ${fn}`);
    return f(...args);
  };
  const advance = (ns: bigint) => {
    now += ns;
  };
  return { imports, call, lines, advance };
}

const bytes = (text: string) => new TextEncoder().encode(text);

function assertDenied(err: unknown, what: RegExp): void {
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'denied');
  assert.match((err as PluginError).message, what);
}

test('stdout becomes info log lines, split at newlines, with CRLF trimmed', () => {
  const { call, lines } = setup();
  const out = call('wasi:cli/stdout', 'getStdout') as Stream;
  out.write(bytes('one\r\ntw'));
  assert.equal(lines, ['info: one']);
  out.write(bytes('o\nthree'));
  assert.equal(lines, ['info: one', 'info: two']);
  out.blockingFlush();
  assert.equal(lines, ['info: one', 'info: two', 'info: three']);
  assert.is(out.checkWrite() > 0n, true);
});

test('stderr goes to the log at warn and the same stream is returned every time', () => {
  const { call, lines } = setup();
  const getStderr = () => call('wasi:cli/stderr', 'getStderr') as Stream;
  assert.is(getStderr(), getStderr());
  getStderr().blockingWriteAndFlush(bytes('boom\n'));
  assert.equal(lines, ['warn: boom']);
});

test('a line the log refuses with a WitError is dropped; other log failures propagate', () => {
  let calls = 0;
  const refuse = setup({
    log: () => {
      calls++;
      throw new WitError('not-granted');
    },
  });
  const out = refuse.call('wasi:cli/stdout', 'getStdout') as Stream;
  out.write(bytes('dropped\n'));
  assert.is(calls, 1);
  const broken = setup({
    log: () => {
      throw new RangeError('host bug');
    },
  });
  const err = broken.call('wasi:cli/stderr', 'getStderr') as Stream;
  assert.throws(() => err.write(bytes('x\n')), /host bug/);
});

test('a line longer than MAX_LINE_BYTES is split rather than buffered without bound', () => {
  const { call, lines } = setup();
  const out = call('wasi:cli/stdout', 'getStdout') as Stream;
  out.write(new Uint8Array(MAX_LINE_BYTES * 2 + 5).fill(0x61));
  assert.is(lines.length, 2);
  assert.is(lines[0], `info: ${'a'.repeat(MAX_LINE_BYTES)}`);
  out.blockingFlush();
  assert.is(lines[2], 'info: aaaaa');
});

test('stdin is at end of stream, the environment is empty and nothing is preopened', () => {
  const { call } = setup();
  const stdin = call('wasi:cli/stdin', 'getStdin') as { read(n: bigint): Uint8Array };
  assert.equal(
    thrown(() => stdin.read(10n)),
    { payload: { tag: 'closed' } },
  );
  const env = ['getEnvironment', 'getArguments', 'initialCwd'].map((f) =>
    call('wasi:cli/environment', f),
  );
  assert.equal(env, [[], [], undefined]);
  assert.equal(call('wasi:filesystem/preopens', 'getDirectories'), []);
  assert.is(call('wasi:cli/terminal-stdout', 'getTerminalStdout'), undefined);
});

test('the monotonic clock is the one given; a clock pollable becomes ready as time passes', () => {
  const { call, advance } = setup();
  const clock = 'wasi:clocks/monotonic-clock';
  advance(500n);
  assert.is(call(clock, 'now'), 500n);
  const pollable = call(clock, 'subscribeDuration', 100n) as Pollable;
  assert.is(pollable.ready(), false);
  const poll = (p: Pollable[]) => call('wasi:io/poll', 'poll', p) as Uint32Array;
  const ready = call(clock, 'subscribeInstant', 0n) as Pollable;
  assert.equal([...poll([pollable, ready])], [1]);
  advance(100n);
  assert.is(pollable.ready(), true);
  pollable.block(); // Ready: returns at once.
});

test('waiting on a pollable that is not ready is denied instead of blocking the thread', () => {
  const { call } = setup();
  const pollable = call('wasi:clocks/monotonic-clock', 'subscribeDuration', 1000n) as Pollable;
  assertDenied(
    thrown(() => pollable.block()),
    /block the device thread/,
  );
  const poll = (p: Pollable[]) => call('wasi:io/poll', 'poll', p) as Uint32Array;
  assertDenied(
    thrown(() => poll([pollable])),
    /wasi:io\/poll#poll/,
  );
});

test('the wall clock splits nanoseconds since the epoch into seconds and nanoseconds', () => {
  const { call } = setup({ wallClockNs: () => 1_700_000_000_123_456_789n });
  const now = call('wasi:clocks/wall-clock', 'now');
  assert.equal(now, { seconds: 1_700_000_000n, nanoseconds: 123_456_789 });
});

test('random bytes come from the source given, and a huge request is denied', () => {
  const { call } = setup({
    randomFill: (b) => {
      for (let i = 0; i < b.length; i++) b[i] = i + 1;
    },
  });
  const random = 'wasi:random/random';
  assert.equal([...(call(random, 'getRandomBytes', 3n) as Uint8Array)], [1, 2, 3]);
  assert.is(call(random, 'getRandomU64'), 0x0807060504030201n);
  assertDenied(
    thrown(() => call(random, 'getRandomBytes', 1n << 40n)),
    /get-random-bytes/,
  );
});

test('a denied interface destructures, but calling, constructing or static calls throw', () => {
  const { imports } = setup();
  const { createTcpSocket } = imports['wasi:sockets/tcp-create-socket'] as Record<string, Fn>;
  assertDenied(
    thrown(() => createTcpSocket?.('ipv4')),
    /^dev:wasi:sockets\/tcp-create-socket#create-tcp-socket: denied: .*no network/,
  );
  const { handle } = imports['wasi:http/outgoing-handler'] as Record<string, Fn>;
  const { Fields } = imports['wasi:http/types'] as Record<string, Fn>;
  assertDenied(
    thrown(() => handle?.()),
    /outgoing-handler#handle/,
  );
  const Ctor = Fields as unknown as new () => object;
  assertDenied(
    thrown(() => new Ctor()),
    /#fields/,
  );
  const withStatic = Fields as unknown as { fromList(): unknown; prototype: object };
  assertDenied(
    thrown(() => withStatic.fromList()),
    /#fields\.from-list/,
  );
  // The glue checks `instanceof` and builds borrowed handles with Object.create(prototype).
  assert.is(Object.create(withStatic.prototype) instanceof Ctor, true);
  const exit = (imports['wasi:cli/exit'] as Record<string, Fn>).exit;
  assertDenied(
    thrown(() => exit?.({ tag: 'ok' })),
    /cannot exit/,
  );
});

test('every allowed and denied interface has an entry, keyed without a version', () => {
  const { imports } = setup();
  for (const name of [...WASI_ALLOWED, ...Object.keys(WASI_DENIED)]) {
    assert.ok(imports[name], name);
  }
  assert.is(
    Object.keys(imports).some((k) => k.includes('@')),
    false,
  );
});

test('isKnownWasiImport accepts WASI 0.2 interfaces it answers and nothing else', () => {
  assert.is(isKnownWasiImport('wasi:io/streams@0.2.3'), true);
  assert.is(isKnownWasiImport('wasi:sockets/tcp@0.2.0'), true);
  assert.is(isKnownWasiImport('wasi:io/streams@0.3.0'), false);
  assert.is(isKnownWasiImport('wasi:keyvalue/store@0.2.0'), false);
  assert.is(isKnownWasiImport('vfiobox:device/irq@0.1.0'), false);
});

test('every WASI import of the ticker plugin (plugins/js/ticker/expected.wit) is answered', () => {
  const wit = readFileSync(
    new URL('../../../plugins/js/ticker/expected.wit', import.meta.url),
    'utf8',
  );
  const names = [...wit.matchAll(/^\s*import (wasi:[^;]+);/gm)].map((m) => m[1] as string);
  assert.ok(names.length > 10, `found ${names.length} WASI imports`);
  const { imports } = setup();
  for (const name of names) {
    assert.ok(isKnownWasiImport(name), name);
    assert.ok(imports[name.replace(/@.*/, '')], name);
  }
});

test.run();

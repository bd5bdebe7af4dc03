// SPDX-License-Identifier: MIT
// `vfiobox test`: replaying the golden traces of test/fixtures/traces, catching a corrupted
// copy, recording a trace from a script, and the errors for bad input. Every run uses the
// tier's engine (--engine), so the traces replay the same on V8 and on wasmtime.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isInput, parseTrace } from '../../host/harness/trace.js';
import { type CliRun, runCli } from '../helpers/cli.js';
import { engine, pluginPath, ROOT } from './support.js';

const test = suite('vfiobox test');

const run = (argv: string[]): Promise<CliRun> => runCli([...argv, '--engine', engine.name]);

const GOLDEN = ['edu', 'serial16550'] as const;
const golden = (name: string) => join(ROOT, 'test', 'fixtures', 'traces', `${name}.jsonl`);
let dir = '';

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vfiobox-test-cmd-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** `text` with its line `n` (1-based) passed through `edit`. */
function editLine(text: string, n: number, edit: (line: string) => string): string {
  const lines = text.split('\n');
  lines[n - 1] = edit(lines[n - 1] ?? '');
  return lines.join('\n');
}

/** The 1-based line of the first line matching `re`. */
function lineOf(text: string, re: RegExp): number {
  const i = text.split('\n').findIndex((l) => re.test(l));
  assert.ok(i >= 0, `no line matches ${re}`);
  return i + 1;
}

for (const name of GOLDEN) {
  test(`the ${name} golden trace replays without a mismatch`, async () => {
    const r = await run(['test', pluginPath(name), golden(name)]);
    const count = parseTrace(readFileSync(golden(name), 'utf8')).length;
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is(r.stdout, `ok ${count} events\n`);
  });
}

test('a corrupted read value fails with the event index, line, op, expected and actual', async () => {
  const text = readFileSync(golden('edu'), 'utf8');
  // The factorial of 5: 0x78. Say 0x79 instead.
  const line = lineOf(text, /"offset":8,"width":4,"value":"0x78"/);
  const path = write(
    'edu-bad-value.jsonl',
    editLine(text, line, (l) => l.replace('0x78', '0x79')),
  );
  const index = parseTrace(text.split('\n').slice(0, line).join('\n')).length - 1;
  const r = await run(['test', pluginPath('edu'), path]);
  assert.is(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2, r.stdout);
  assert.is(
    lines[0],
    `mismatch at event ${index} (line ${line}) read: ` +
      'expected {"op":"read","region":0,"offset":8,"width":4,"value":"0x79"}, ' +
      'actual {"op":"read","region":0,"offset":8,"width":4,"value":"0x78"}',
  );
  assert.match(lines[1] ?? '', /^FAIL 1 mismatches in \d+ events$/);
});

test('a missing interrupt and a missing stream byte are each named', async () => {
  const text = readFileSync(golden('serial16550'), 'utf8');
  const irqLine = lineOf(text, /"op":"irq"/);
  const outLine = lineOf(text, /"op":"stream-out","hex":"68"/);
  let bad = editLine(text, outLine, () => '# (removed)');
  bad = editLine(bad, irqLine, () => '# (removed)');
  const r = await run(['test', pluginPath('serial16550'), write('serial-bad.jsonl', bad)]);
  assert.is(r.code, 1);
  assert.match(
    r.stdout,
    /mismatch at event \d+ \(line \d+\) stream-out: expected \(none\), actual \{"op":"stream-out","hex":"68"\}/,
  );
  assert.match(
    r.stdout,
    /mismatch at event \d+ \(line \d+\) irq: expected \(none\), actual \{"op":"irq","index":0,"sub":0\}/,
  );
  assert.match(r.stdout, /FAIL 2 mismatches/);
});

test('an extra event the device never produces is reported against the trace', async () => {
  const text = readFileSync(golden('edu'), 'utf8');
  const line = lineOf(text, /"op":"dma-read","iova":"0x3000"/);
  const bad = editLine(text, line, (l) => l.replace('0x3000', '0x13000'));
  const r = await run(['test', pluginPath('edu'), write('edu-bad-dma.jsonl', bad)]);
  assert.is(r.code, 1);
  assert.match(
    r.stdout,
    new RegExp(`\\(line ${line}\\) dma-read: expected \\{"op":"dma-read","iova":"0x13000"`),
  );
});

test('--record fills in read values and outputs from a script, keeping its comments', async () => {
  for (const name of GOLDEN) {
    const text = readFileSync(golden(name), 'utf8');
    // The script: the golden trace's inputs, reads without their values.
    const script = text
      .split('\n')
      .filter((l) => !l.startsWith('{') || isInput(JSON.parse(l)))
      .map((l) => l.replace(/("op":"read".*),"value":"[^"]*"/, '$1'))
      .join('\n');
    assert.not.match(script, /"op":"irq"|"value":"0x10000ed"/);
    const out = join(dir, `${name}-recorded.jsonl`);
    const r = await run([
      'test',
      pluginPath(name),
      out,
      '--record',
      write(`${name}.script`, script),
    ]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, `recorded ${parseTrace(text).length} events to ${out}\n`);
    assert.is(readFileSync(out, 'utf8'), text, 'the recording is the golden trace, byte for byte');
  }
});

test('a missing trace or plugin file is one error line and exit 1', async () => {
  const noTrace = await run(['test', pluginPath('edu'), join(dir, 'nope.jsonl')]);
  assert.is(noTrace.code, 1);
  assert.match(noTrace.stderr, /^vfiobox: trace .*nope\.jsonl: not found\n/);
  const noScript = await run(['test', 'edu', join(dir, 'out.jsonl'), '--record', join(dir, 'x')]);
  assert.is(noScript.code, 1);
  assert.match(noScript.stderr, /^vfiobox: script .*x: not found\n/);
  const noPlugin = await run(['test', join(dir, 'missing.wasm'), golden('edu')]);
  assert.is(noPlugin.code, 1);
  assert.match(noPlugin.stderr, /^vfiobox: .*missing\.wasm/);
});

test('a bad trace line is reported with its line number and what is wrong', async () => {
  const cases: Array<[string, RegExp]> = [
    [
      '# c\n{"op":"read","region":0,"offset":0,"width":4,"value":"0x1"}\n{"op":"poke"}\n',
      /trace line 3: unknown op "poke"/,
    ],
    ['\n\n{"op":"read","region":0,"offset":0,"width":4\n', /trace line 3: SyntaxError/],
    [
      '{"op":"write","region":0,"offset":"4","width":4,"value":"0x1"}\n',
      /trace line 1: write\.offset: expected a number/,
    ],
    [
      '{"op":"read","region":0,"offset":0,"width":4}\n',
      /trace line 1: read\.value: expected a string/,
    ],
  ];
  for (const [text, re] of cases) {
    const path = write('bad.jsonl', text);
    const r = await run(['test', pluginPath('edu'), path]);
    assert.is(r.code, 1, text);
    assert.match(r.stderr, re);
    assert.ok(r.stderr.includes(path), 'the file is named');
  }
});

test('an input the device cannot take names its event and line instead of crashing', async () => {
  const cases: Array<[string, RegExp]> = [
    [
      '{"op":"read","region":3,"offset":0,"width":4,"value":"0x0"}\n',
      /event 0 \(line 1\) read: region/,
    ],
    [
      '{"op":"advance","ns":1}\n{"op":"write","region":0,"offset":0,"width":3,"value":"0x1"}\n',
      /event 1 \(line 2\) write: .*width/,
    ],
    [
      '{"op":"ram-set","iova":"0xfffff","hex":"0011"}\n',
      /event 0 \(line 1\) ram-set: .*outside guest RAM/,
    ],
    ['{"op":"stream-in","hex":"zz"}\n', /event 0 \(line 1\) stream-in: expected hex bytes/],
    [
      '{"op":"write","region":0,"offset":4,"width":4,"value":"five"}\n',
      /event 0 \(line 1\) write:/,
    ],
  ];
  for (const [text, re] of cases) {
    const r = await run(['test', pluginPath('edu'), write('bad-input.jsonl', text)]);
    assert.is(r.code, 1, text);
    assert.match(r.stderr, re);
    assert.not.match(r.stderr, /internal error/);
  }
});

test('missing arguments are a usage error (exit 2)', async () => {
  const r = await run(['test', pluginPath('edu')]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /test needs a plugin and a trace file/);
  const help = await run(['test', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^usage: vfiobox test <plugin\.wasm> <trace\.jsonl>/);
  assert.match(help.stdout, /--engine v8\|wasmtime/);
});

test('an unknown --engine is a usage error (exit 2) that lists the engines', async () => {
  const r = await runCli(['test', pluginPath('edu'), golden('edu'), '--engine', 'spidermonkey']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--engine must be one of v8, wasmtime \(got 'spidermonkey'\)/);
});

test.run();

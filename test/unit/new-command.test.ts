// SPDX-License-Identifier: MIT
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { findVfioboxHome, invalidName, NEW_ERROR, scaffold } from '../../host/cli/commands/new.js';
import { testCommand } from '../../host/cli/commands/test.js';
import { type CliIo, main } from '../../host/cli/main.js';
import { ConfigError } from '../../host/errors.js';
import { thrown } from '../helpers/thrown.js';

const test = suite('vfiobox new');

const HOME = findVfioboxHome();
let tmp = '';

test.before.each(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vfiobox-new-'));
});
test.after.each(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function home(): string {
  if (!HOME) throw new Error('no vfiobox home (templates/ and wit/) above the test build');
  return HOME;
}

function io(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    isTTY: false,
  };
}

const C_FILES = [
  '.gitignore',
  'Makefile',
  'README.md',
  'manifest.json',
  'src/libc/include/stdlib.h',
  'src/libc/include/string.h',
  'src/libc/libc.c',
  'src/my-dev.c',
  'test/basic.trace.jsonl',
];
const TS_FILES = [
  '.gitignore',
  'Makefile',
  'README.md',
  'manifest.json',
  'package.json',
  'src/my-dev.ts',
  'test/basic.trace.jsonl',
  'tsconfig.json',
];

function newProject(lang: 'c' | 'ts', name = 'my-dev'): string[] {
  return scaffold({ name, lang, parentDir: tmp, home: home(), version: '0.1.0' });
}

test('a C project has the device, manifest, README, golden trace and a standalone Makefile', () => {
  assert.equal(newProject('c'), C_FILES);
  const dir = join(tmp, 'my-dev');
  const makefile = readFileSync(join(dir, 'Makefile'), 'utf8');
  assert.match(makefile, `VFIOBOX_HOME ?= ${home()}\n`);
  assert.match(makefile, '$(VFIOBOX_HOME)/scripts/toolchain.sh');
  assert.match(makefile, '$(VFIOBOX_HOME)/wit/vfiobox-device/$(WIT_VERSION)');
  assert.match(makefile, 'test/basic.trace.jsonl');
  assert.not.match(makefile, 'plugin.mk', 'does not include the checkout-relative rules');
  const source = readFileSync(join(dir, 'src/my-dev.c'), 'utf8');
  assert.match(source, 'kVendorId = 0x1234');
  assert.match(source, 'kDeviceId = 0x0001');
  assert.match(source, '"my-dev: irq raise refused"');
  const libc = readFileSync(join(home(), 'plugins/c/common/libc/libc.c'), 'utf8');
  assert.is(readFileSync(join(dir, 'src/libc/libc.c'), 'utf8'), libc);
});

test('a TypeScript project builds with npm run build or make, against this vfiobox', () => {
  assert.equal(newProject('ts'), TS_FILES);
  const dir = join(tmp, 'my-dev');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  assert.equal([pkg.name, pkg.scripts.build, pkg.scripts.test], ['my-dev', 'make', 'make test']);
  const makefile = readFileSync(join(dir, 'Makefile'), 'utf8');
  assert.match(makefile, `VFIOBOX_HOME ?= ${home()}\n`);
  assert.match(makefile, '$(VFIOBOX_HOME)/plugins/js/build.mjs');
  assert.match(readFileSync(join(dir, 'src/my-dev.ts'), 'utf8'), 'const VENDOR_ID = 0x1234;');
  assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /per call/);
});

test('every placeholder is filled and manifest.json names the project', () => {
  for (const lang of ['c', 'ts'] as const) {
    const files = newProject(lang, `dev-${lang}`);
    for (const file of files) {
      const text = readFileSync(join(tmp, `dev-${lang}`, file), 'utf8');
      assert.not.match(text, /\{\{|__name__/, `${lang}: ${file}`);
    }
    const manifest = JSON.parse(readFileSync(join(tmp, `dev-${lang}`, 'manifest.json'), 'utf8'));
    assert.is(manifest.name, `dev-${lang}`);
    assert.equal(manifest.ids[0], {
      vendor: '0x1234',
      device: '0x0001',
      subvendor: '*',
      subdevice: '*',
    });
  }
});

test('an existing non-empty directory is refused and left as it was', () => {
  const dir = join(tmp, 'my-dev');
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  const err = thrown(() => newProject('c'));
  assert.instance(err, ConfigError);
  assert.is((err as ConfigError).code, NEW_ERROR);
  assert.match((err as ConfigError).message, 'already exists and is not empty');
  assert.equal(spawnSync('ls', ['-A', dir]).stdout.toString(), 'notes.txt\n');
  assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
});

test('an existing file of that name is refused; an empty directory is filled', () => {
  writeFileSync(join(tmp, 'my-dev'), 'x');
  assert.match((thrown(() => newProject('c')) as Error).message, 'is not a directory');
  rmSync(join(tmp, 'my-dev'));
  mkdirSync(join(tmp, 'my-dev'));
  assert.equal(newProject('c'), C_FILES);
});

test('names must be lowercase words of letters and digits joined by single dashes', () => {
  for (const name of ['edu', 'my-dev2', 'a1-b2-c3']) assert.is(invalidName(name), undefined, name);
  const bad = ['', 'My-dev', '1dev', 'my_dev', 'my--dev', 'dev-', '-dev', '../dev', 'a'.repeat(41)];
  for (const name of bad) {
    assert.type(invalidName(name), 'string', name);
    assert.throws(
      () => newProject('c', name),
      (e: unknown) => e instanceof ConfigError,
      name,
    );
  }
  assert.is(existsSync(join(tmp, 'dev')), false, 'nothing written for ../dev');
});

test('the command writes <dir>/<name> and prints the next steps', async () => {
  const cli = io();
  assert.is(await main(['new', 'my-dev', '--lang', 'ts', '--dir', tmp], cli), 0);
  assert.match(cli.out.join(''), /created .*my-dev\/ \(ts, 8 files\)[\s\S]*make test/);
  assert.ok(existsSync(join(tmp, 'my-dev', 'src', 'my-dev.ts')));
});

test('bad usage exits 2: no name, an unknown language, an extra argument', async () => {
  for (const args of [[], ['x', '--lang', 'rust'], ['x', 'y']]) {
    const cli = io();
    assert.is(await main(['new', ...args, '--dir', tmp], cli), 2, args.join(' '));
    assert.match(cli.err.join(''), /vfiobox new --help/);
  }
  const cli = io();
  assert.is(await main(['new', 'Bad_Name', '--dir', tmp], cli), 1);
  assert.match(cli.err.join(''), /invalid plugin name 'Bad_Name'/);
});

const toolchain = HOME
  ? spawnSync('bash', [join(HOME, 'scripts', 'toolchain.sh'), 'check'], { stdio: 'ignore' })
  : undefined;

test('the C template builds with make and passes its own golden trace', async () => {
  if (toolchain?.status !== 0) {
    console.log('  (skipped: the C toolchain is not installed; bash scripts/toolchain.sh)');
    return;
  }
  newProject('c');
  const dir = join(tmp, 'my-dev');
  const make = spawnSync('make', ['-C', dir, '-j1'], { encoding: 'utf8' });
  assert.is(make.status, 0, `${make.stdout}\n${make.stderr}`);
  assert.ok(existsSync(join(dir, 'build', 'my-dev.wasm')));
  assert.ok(existsSync(join(dir, 'build', 'my-dev.manifest.json')));
  const cli = io();
  // The jco transpile cache goes to the temp dir (set only now: make's toolchain lives there too).
  const cache = process.env.VFIOBOX_CACHE;
  process.env.VFIOBOX_CACHE = join(tmp, 'cache');
  let code: number;
  try {
    code = await testCommand.run(
      [join(dir, 'build', 'my-dev.wasm'), join(dir, 'test', 'basic.trace.jsonl')],
      cli,
    );
  } finally {
    if (cache === undefined) delete process.env.VFIOBOX_CACHE;
    else process.env.VFIOBOX_CACHE = cache;
  }
  assert.is(code, 0, cli.out.join('') + cli.err.join(''));
  assert.match(cli.out.join(''), /^ok \d+ events/);
});

test.run();

// SPDX-License-Identifier: MIT
// `vfiobox new <name> [--lang c|ts]`: scaffold a device-model plugin project from templates/
// (DESIGN.md "Plugin languages and templates"). The project builds with one command (`make`),
// against the vfiobox that generated it (VFIOBOX_HOME in its Makefile: its toolchain script,
// its wit/ folder, for TypeScript its node_modules), and `make test` replays a golden trace.
//
// Template files are copied with `__name__` in paths and {{placeholders}} in contents replaced
// (see PLACEHOLDERS); `gitignore` becomes `.gitignore` (npm would drop a dotfile from a package).
// The project is written to a temporary sibling directory and renamed into place, so a failure
// leaves nothing half-written.

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../errors.js';
import { usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

export const NEW_ERROR = 'ERR_VFIOBOX_NEW';
export const LANGS = ['c', 'ts'] as const;
export type Lang = (typeof LANGS)[number];

/** Lowercase words of letters and digits joined by single dashes, starting with a letter. */
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const MAX_NAME = 40;

/**
 * Why `name` cannot be a plugin name, or undefined if it can. It becomes a file name, a C
 * identifier (dashes to underscores) and the manifest's name, hence the narrow alphabet.
 */
export function invalidName(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > MAX_NAME) return `it is longer than ${MAX_NAME} characters`;
  if (!NAME.test(name)) {
    return 'use lowercase letters, digits and single dashes, starting with a letter (e.g. my-dev2)';
  }
  return undefined;
}

/** The vfiobox checkout or package: the nearest ancestor of this module with templates/ and wit/. */
export function findVfioboxHome(
  from = dirname(fileURLToPath(import.meta.url)),
): string | undefined {
  let dir = from;
  for (let depth = 0; depth < 8; depth++) {
    if (existsSync(join(dir, 'templates', 'c')) && existsSync(join(dir, 'wit', 'vfiobox-device'))) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** The version in <home>/package.json ('unknown' if unreadable): what the README names. */
function packageVersion(home: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(home, 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface ScaffoldOptions {
  name: string;
  lang: Lang;
  /** the directory that receives <name>/ */
  parentDir: string;
  /** the vfiobox checkout the project builds against (templates are read from it) */
  home: string;
  version: string;
}

/** Files a project gets besides its templates: C plugins carry their own freestanding libc. */
const EXTRA_FILES: Readonly<Record<Lang, ReadonlyArray<[from: string, to: string]>>> = {
  c: [
    ['plugins/c/common/libc/libc.c', 'src/libc/libc.c'],
    ['plugins/c/common/libc/include/stdlib.h', 'src/libc/include/stdlib.h'],
    ['plugins/c/common/libc/include/string.h', 'src/libc/include/string.h'],
  ],
  ts: [],
};

function placeholders(opts: ScaffoldOptions): Record<string, string> {
  const snake = opts.name.replace(/-/g, '_');
  return {
    name: opts.name,
    name_c: snake,
    NAME_C: snake.toUpperCase(),
    vfiobox_home: opts.home,
    vfiobox_version: opts.version,
  };
}

function render(text: string, values: Readonly<Record<string, string>>, file: string): string {
  return text.replace(/\{\{([A-Za-z_]+)\}\}/g, (whole, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${file}: unknown placeholder ${whole}`);
    return value;
  });
}

/** Every file under `dir`, as paths relative to it. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walk(dir, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

function targetPath(rel: string, name: string): string {
  return rel
    .split('/')
    .map((part) => (part === 'gitignore' ? '.gitignore' : part.replaceAll('__name__', name)))
    .join('/');
}

/** Refuses a target that exists and is not an empty directory. */
function checkTarget(target: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) {
    throw new ConfigError(
      NEW_ERROR,
      `${target} exists and is not a directory`,
      'pick another name',
    );
  }
  if (readdirSync(target).length > 0) {
    throw new ConfigError(
      NEW_ERROR,
      `${target} already exists and is not empty; nothing was written`,
      'pick another name, or remove the directory first',
    );
  }
}

/**
 * Writes the project to <parentDir>/<name>/ and returns the files written (relative paths,
 * sorted). The name must be valid (invalidName) and the target absent or an empty directory.
 * @throws ConfigError for a bad name or an occupied target
 */
export function scaffold(opts: ScaffoldOptions): string[] {
  const problem = invalidName(opts.name);
  if (problem) throw new ConfigError(NEW_ERROR, `invalid plugin name '${opts.name}': ${problem}`);
  const target = resolve(opts.parentDir, opts.name);
  checkTarget(target);
  const values = placeholders(opts);
  const files = new Map<string, string>();
  for (const root of [
    join(opts.home, 'templates', 'common'),
    join(opts.home, 'templates', opts.lang),
  ]) {
    for (const rel of walk(root)) {
      const text = readFileSync(join(root, rel), 'utf8');
      files.set(targetPath(rel, opts.name), render(text, values, rel));
    }
  }
  for (const [from, to] of EXTRA_FILES[opts.lang]) {
    files.set(to, readFileSync(join(opts.home, from), 'utf8'));
  }
  const staging = `${target}.vfiobox-new-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const [rel, text] of files) {
      mkdirSync(dirname(join(staging, rel)), { recursive: true });
      writeFileSync(join(staging, rel), text);
    }
    checkTarget(target); // Again: the directory may have filled up meanwhile.
    if (existsSync(target)) rmSync(target, { recursive: true });
    renameSync(staging, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return [...files.keys()].sort();
}

const USAGE = `usage: vfiobox new <name> [--lang c|ts] [--dir <parent>]

Creates ./<name>/, a device-model plugin project: src/ with a minimal device (placeholder IDs
0x1234/0x0001, a scratch register, an interrupt-raise register), manifest.json, README.md and
test/basic.trace.jsonl, a golden trace. Refuses a directory that exists and is not empty.

  cd <name> && make        build build/<name>.wasm (C: installs the toolchain once)
  make test                vfiobox test build/<name>.wasm test/basic.trace.jsonl

The project builds against this vfiobox (VFIOBOX_HOME in its Makefile).

options:
  --lang c|ts     the language (default c). C: about 15 KB and tens of ns per call. TypeScript
                  (componentize-js): about 11 MB and about 10 us per call, for low-rate devices
  --dir <parent>  create <parent>/<name> instead of ./<name>
  -h, --help      show this help
`;

export const newCommand: Command = {
  name: 'new',
  summary: 'create a device-model plugin project (C or TypeScript) from a template',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      options: { lang: { type: 'string', default: 'c' }, dir: { type: 'string', default: '.' } },
      strict: true,
      allowPositionals: true,
    });
    const [name, ...extra] = positionals;
    if (name === undefined) throw usageError('missing <name>', 'see vfiobox new --help');
    if (extra.length > 0)
      throw usageError(`unexpected argument '${extra[0]}'`, 'see vfiobox new --help');
    const lang = values.lang;
    if (!LANGS.includes(lang as Lang)) {
      throw usageError(`--lang: expected c or ts, got '${lang}'`, 'see vfiobox new --help');
    }
    const home = findVfioboxHome();
    if (!home) {
      throw new ConfigError(
        NEW_ERROR,
        'cannot find the templates/ folder of this vfiobox installation',
      );
    }
    const parentDir = resolve(values.dir);
    const version = packageVersion(home);
    const files = scaffold({ name, lang: lang as Lang, parentDir, home, version });
    const where = relative(process.cwd(), join(parentDir, name)) || '.';
    io.stdout.write(`created ${where}/ (${lang}, ${files.length} files)\n\n`);
    io.stdout.write(
      `  cd ${where}\n  make          # build/${name}.wasm\n  make test     # replay test/basic.trace.jsonl\n`,
    );
    return 0;
  },
};

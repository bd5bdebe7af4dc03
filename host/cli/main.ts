// SPDX-License-Identifier: MIT
// The vfiobox command line: a registry of commands, global --help/--version, and the one place
// that turns errors into output and exit codes.
//
// Adding a command: write host/cli/commands/<name>.ts exporting a `Command`, add it to COMMANDS.
// Exit codes: 0 success, 1 failure (expected errors print one line plus an optional hint;
// anything else is a bug and prints its stack), 2 usage error.

import { ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import type { BindOptions } from '../sysfs/bind.js';
import { bindCommand } from './commands/bind.js';
import { demoCommand } from './commands/demo.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { listCommand } from './commands/list.js';
import { matchCommand } from './commands/match.js';
import { newCommand } from './commands/new.js';
import { serveCommand } from './commands/serve.js';
import { testCommand } from './commands/test.js';
import { unbindCommand } from './commands/unbind.js';
import { closest, formatError, isExpectedError, USAGE_ERROR, usageError } from './format.js';

const log = createLogger('cli');

/** Kept equal to package.json's version (test/unit/cli.test.ts checks). */
export const VERSION = '0.1.0';

export interface TextOutput {
  write(text: string): unknown;
}

/** Everything a command may touch; tests pass their own. */
export interface CliIo {
  stdout: TextOutput;
  stderr: TextOutput;
  /** whether stdout is a terminal (commands may add notes for humans) */
  isTTY: boolean;
  /** sysfs root and writer; default: the environment ($VFIOBOX_SYSFS_ROOT or '/') */
  sysfs?: BindOptions | undefined;
  /** long-running commands (serve) stop when this aborts, as on SIGINT/SIGTERM */
  signal?: AbortSignal | undefined;
}

export interface Command {
  name: string;
  /** one line for `vfiobox --help` */
  summary: string;
  /** the text of `vfiobox <name> --help`, starting with `usage: vfiobox <name> ...` */
  usage: string;
  /** returns the exit code; throws ConfigError/VfioError for expected failures */
  run(args: string[], io: CliIo): Promise<number>;
}

/** The registry, in help order. */
export const COMMANDS: readonly Command[] = [
  serveCommand,
  demoCommand,
  listCommand,
  infoCommand,
  bindCommand,
  unbindCommand,
  inspectCommand,
  matchCommand,
  testCommand,
  newCommand,
];

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY === true };
}

export function helpText(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `vfiobox ${VERSION}: a host for PCI device models, with real VFIO underneath

usage: vfiobox <command> [options]

commands:
${list}

options:
  -h, --help     show this help, or a command's: vfiobox <command> --help
  -V, --version  print the version

environment:
  NODE_DEBUG=vfio:*         debug logging (areas: cli, sysfs, bind)
  VFIOBOX_SYSFS_ROOT=<dir>  read sysfs and /dev under <dir> instead of / (testing)
`;
}

function unknownCommand(name: string): ConfigError {
  const suggestion = closest(
    name,
    COMMANDS.map((c) => c.name),
  );
  const hint = suggestion
    ? `did you mean 'vfiobox ${suggestion}'?`
    : 'see vfiobox --help for the commands';
  return usageError(`unknown command '${name}'`, hint);
}

function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  return options.includes('--help') || options.includes('-h');
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr.write(helpText());
    return 2;
  }
  if (first === '--help' || first === '-h') {
    io.stdout.write(helpText());
    return 0;
  }
  if (first === '--version' || first === '-V') {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (first === 'help') return help(rest, io);
  if (first.startsWith('-')) {
    throw usageError(`unknown option '${first}'`, 'see vfiobox --help');
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) throw unknownCommand(first);
  if (wantsHelp(rest)) {
    io.stdout.write(command.usage);
    return 0;
  }
  return await runCommand(command, rest, io);
}

function help(args: readonly string[], io: CliIo): number {
  const [name] = args;
  if (name === undefined) {
    io.stdout.write(helpText());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw unknownCommand(name);
  io.stdout.write(command.usage);
  return 0;
}

/** Runs a command, turning node:util parseArgs errors into usage errors that name it. */
async function runCommand(command: Command, args: string[], io: CliIo): Promise<number> {
  try {
    return await command.run(args, io);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw usageError(parseArgsMessage(err.message), `see vfiobox ${command.name} --help`);
    }
    throw err;
  }
}

/** Node's parseArgs messages are long and capitalised; keep their first clause. */
function parseArgsMessage(message: string): string {
  const first = message.split(/\.\s/)[0] ?? message;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

function report(err: unknown, io: CliIo): number {
  if (isExpectedError(err)) {
    if (log.enabled) log('%s', err.stack);
    io.stderr.write(formatError(err));
    return err instanceof ConfigError && err.code === USAGE_ERROR ? 2 : 1;
  }
  const text = err instanceof Error ? (err.stack ?? String(err)) : String(err);
  io.stderr.write(`vfiobox: internal error (a bug, please report it):\n${text}\n`);
  return 1;
}

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code. Never throws
 * and never exits the process; bin.ts sets process.exitCode.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    return report(err, io);
  }
}

// SPDX-License-Identifier: MIT
// The WASI preview2 (0.2.x) imports a plugin may have, deny by default. Components made by
// componentize-js import WASI for what its StarlingMonkey engine offers the JS inside (console,
// Math.random and crypto, Date and performance, fetch); jco-transpiled glue asks for each
// interface by its unversioned name ('wasi:cli/stdout'). vfiobox gives a plugin no ambient
// authority (DESIGN.md "Isolation and failure model"), so:
//   allowed   clocks (monotonic, wall), random (secure, insecure, seed): harmless and the
//             JS engine needs them; both can be replaced (virtual time, a seeded source)
//   redirected stdout -> log at 'info', stderr -> log at 'warn', one line per call; stdin empty
//   empty     environment (no variables, no arguments, no cwd), filesystem (no preopens, so no
//             descriptor can ever exist), terminals (none)
//   denied    everything else, notably sockets, http and cli/exit: present, so a component that
//             merely imports them instantiates, but any call throws PluginError kind 'denied',
//             which the engine's error boundary turns into a trap (the device is fenced).
// A WASI interface missing from this table is not known to be harmless: the engine refuses a
// component that imports one (see isKnownWasiImport).

import { randomFillSync } from 'node:crypto';
import { type LogLevel, WitError } from '../engine.js';
import { deniedError, deniedInterface, deniedValue } from './deny.js';
import { InputStream, IoError, makePoll, OutputStream, Pollable } from './io.js';

export { MAX_LINE_BYTES } from './io.js';

export interface WasiOptions {
  /** where the plugin's stdout and stderr go, one line per call (the grant-checked log import
   *  fits: a WitError it throws drops the line; anything else it throws traps the plugin) */
  log(level: LogLevel, message: string): void;
  /** the plugin's name in PluginError messages (default 'plugin') */
  name?: string | undefined;
  /** monotonic clock in ns (default: process.hrtime, origin at this call); the harness passes
   *  its virtual clock so JS timing in a plugin stays deterministic */
  monotonicNs?: (() => bigint) | undefined;
  /** wall clock in ns since the Unix epoch (default: Date.now() in ms resolution) */
  wallClockNs?: (() => bigint) | undefined;
  /** fills `bytes` with random data (default: node:crypto randomFillSync) */
  randomFill?: ((bytes: Uint8Array) => void) | undefined;
}

/** Interfaces a plugin may import, with what it gets (`wasi:<package>/<interface>`). */
export const WASI_ALLOWED: readonly string[] = [
  'wasi:cli/environment',
  'wasi:cli/stdin',
  'wasi:cli/stdout',
  'wasi:cli/stderr',
  'wasi:cli/terminal-input',
  'wasi:cli/terminal-output',
  'wasi:cli/terminal-stdin',
  'wasi:cli/terminal-stdout',
  'wasi:cli/terminal-stderr',
  'wasi:clocks/monotonic-clock',
  'wasi:clocks/wall-clock',
  'wasi:filesystem/types',
  'wasi:filesystem/preopens',
  'wasi:io/error',
  'wasi:io/poll',
  'wasi:io/streams',
  'wasi:random/random',
  'wasi:random/insecure',
  'wasi:random/insecure-seed',
];

/** Interfaces a plugin may import but never use: every call traps. */
export const WASI_DENIED: Readonly<Record<string, string>> = {
  'wasi:cli/exit': 'a device model cannot exit the host',
  'wasi:sockets/instance-network': 'plugins get no network',
  'wasi:sockets/network': 'plugins get no network',
  'wasi:sockets/tcp': 'plugins get no network',
  'wasi:sockets/tcp-create-socket': 'plugins get no network',
  'wasi:sockets/udp': 'plugins get no network',
  'wasi:sockets/udp-create-socket': 'plugins get no network',
  'wasi:sockets/ip-name-lookup': 'plugins get no network',
  'wasi:http/types': 'plugins get no network',
  'wasi:http/outgoing-handler': 'plugins get no network',
};

const WASI_NAME = /^(wasi:[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*)@0\.2\.\d+$/;

/**
 * Whether a component import name (`wasi:io/streams@0.2.3`) is one wasiImports() answers. Only
 * WASI 0.2.x: 0.3 changes the ABI (async streams), and jco 1.12 glue cannot run it anyway.
 */
export function isKnownWasiImport(importName: string): boolean {
  const iface = WASI_NAME.exec(importName)?.[1];
  return iface !== undefined && (WASI_ALLOWED.includes(iface) || iface in WASI_DENIED);
}

/** Caps one get-random-bytes call; WASI lets the host trap on an unreasonable length. */
export const MAX_RANDOM_BYTES = 1 << 20;
const NS_PER_S = 1_000_000_000n;

function defaultMonotonic(): () => bigint {
  const origin = process.hrtime.bigint();
  return () => process.hrtime.bigint() - origin;
}

const defaultWallClock = () => BigInt(Date.now()) * 1_000_000n;

function randomImports(plugin: string, fill: (bytes: Uint8Array) => void) {
  const bytes = (len: bigint): Uint8Array => {
    if (len > BigInt(MAX_RANDOM_BYTES)) {
      throw deniedError(plugin, 'wasi:random/random#get-random-bytes', `len ${len} > 1 MiB`);
    }
    const out = new Uint8Array(Number(len));
    fill(out);
    return out;
  };
  const u64 = (): bigint => new DataView(bytes(8n).buffer).getBigUint64(0, true);
  return {
    'wasi:random/random': { getRandomBytes: bytes, getRandomU64: u64 },
    'wasi:random/insecure': { getInsecureRandomBytes: bytes, getInsecureRandomU64: u64 },
    'wasi:random/insecure-seed': { insecureSeed: (): [bigint, bigint] => [u64(), u64()] },
  };
}

function clockImports(plugin: string, now: () => bigint, wall: () => bigint) {
  const blocks = (): never => {
    throw deniedError(plugin, 'wasi:io/poll#block', 'it would block the device thread');
  };
  const at = (when: bigint) => new Pollable(() => now() >= when, blocks);
  const datetime = (ns: bigint) => ({
    seconds: ns / NS_PER_S,
    nanoseconds: Number(ns % NS_PER_S),
  });
  return {
    'wasi:clocks/monotonic-clock': {
      now,
      resolution: () => 1n,
      subscribeInstant: at,
      subscribeDuration: (delayNs: bigint) => at(now() + delayNs),
    },
    'wasi:clocks/wall-clock': {
      now: () => datetime(wall()),
      resolution: () => datetime(1_000_000n),
    },
  };
}

/** Descriptors cannot exist (no preopens), so every method is denied. */
function filesystemImports(plugin: string) {
  const why = 'plugins get no filesystem';
  return {
    'wasi:filesystem/preopens': { getDirectories: (): [] => [] },
    'wasi:filesystem/types': {
      Descriptor: deniedValue(plugin, 'wasi:filesystem/types#descriptor', why),
      DirectoryEntryStream: deniedValue(
        plugin,
        'wasi:filesystem/types#directory-entry-stream',
        why,
      ),
      filesystemErrorCode: (_err: IoError): undefined => undefined,
    },
  };
}

/**
 * The plugin's console is best effort: a line the log refuses (WitError, e.g. the log is not
 * granted) is dropped rather than failing the plugin's write, which would trap it.
 */
function bestEffort(log: WasiOptions['log']): WasiOptions['log'] {
  return (level, message) => {
    try {
      log(level, message);
    } catch (err) {
      if (!(err instanceof WitError)) throw err;
    }
  };
}

function cliImports(log: WasiOptions['log']) {
  const stdin = new InputStream();
  const stdout = new OutputStream('info', log);
  const stderr = new OutputStream('warn', log);
  class TerminalInput {}
  class TerminalOutput {}
  const none = (): undefined => undefined;
  return {
    'wasi:cli/environment': {
      getEnvironment: (): [string, string][] => [],
      getArguments: (): string[] => [],
      initialCwd: none,
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: none },
    'wasi:cli/terminal-stdout': { getTerminalStdout: none },
    'wasi:cli/terminal-stderr': { getTerminalStderr: none },
  };
}

/**
 * The WASI part of a plugin's import object, keyed as jco 1.12's glue asks for it
 * (unversioned: 'wasi:io/streams'). One set per instance: stdout's partial line and the
 * clocks' origin are per plugin instance. Spread it next to the vfiobox:device imports.
 */
export function wasiImports(opts: WasiOptions): Record<string, unknown> {
  const plugin = opts.name ?? 'plugin';
  const now = opts.monotonicNs ?? defaultMonotonic();
  const imports: Record<string, unknown> = {
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll: makePoll(plugin) },
    'wasi:io/streams': { InputStream, OutputStream },
    ...cliImports(bestEffort(opts.log)),
    ...clockImports(plugin, now, opts.wallClockNs ?? defaultWallClock),
    ...randomImports(plugin, opts.randomFill ?? ((bytes) => randomFillSync(bytes))),
    ...filesystemImports(plugin),
  };
  for (const [iface, why] of Object.entries(WASI_DENIED)) {
    imports[iface] = deniedInterface(plugin, iface, why);
  }
  return imports;
}

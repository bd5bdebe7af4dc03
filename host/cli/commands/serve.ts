// SPDX-License-Identifier: MIT
// `vfiobox serve`: a plugin becomes a PCI device that an unmodified VMM attaches over vfio-user.
// Each device runs in its own worker (host/serve/supervisor.ts); this file is argument
// parsing, the event log, the live stats view and clean shutdown on SIGINT/SIGTERM.

import { parseArgs } from 'node:util';
import { ConfigError } from '../../errors.js';
import { resolvePlugin } from '../../serve/bundled.js';
import {
  DEFAULT_BUDGET_MS,
  type DeviceRunStats,
  type DeviceSpec,
  type ServeEvent,
} from '../../serve/spec.js';
import { DeviceSupervisor } from '../../serve/supervisor.js';
import { engineOption, usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

const USAGE = `usage: vfiobox serve <plugin> --socket <path> [options]

Serves a device plugin over vfio-user: a VMM (QEMU >= 10.1: -device vfio-user-pci,socket=...)
or \`vfiobox demo --socket <path>\` connects to the socket and sees a PCI device. One client per
socket; when it disconnects the device keeps its state and the next client may connect.

  <plugin>               a .wasm component, or a bundled plugin name: edu, serial16550,
                         scratchpad, csum (DMA windows: --engine wasmtime), ticker (TS)

options:
  --socket PATH          vfio-user socket to listen on; repeat for several devices
  --instances N          N instances on PATH.0 ... PATH.<N-1> (mediated-device style)
  --stream unix:PATH     expose the device's byte stream (a UART's line) on a UNIX socket;
                         with several devices, .<i> is appended
  --policy FILE          user policy (grants, sha256 pins): docs/plugins.md
  --sha256 HEX           refuse the plugin unless its sha256 is HEX
  --engine v8|wasmtime   the engine that runs the plugin (default v8). wasmtime: C plugins,
                         a call over its budget is stopped in place (a trap); v8: any
                         plugin, componentize-js (WASI-importing) ones included
  --budget-ms N          longest a plugin call may run before the device is fenced (default
                         ${DEFAULT_BUDGET_MS}); on v8 by restarting its worker, on wasmtime by a trap
  --memory-mib N         cap on the plugin's linear memory (default 16)
  --log-json             one JSON object per event on stderr
  --stats-interval S     print stats every S seconds (on a terminal: a live view, default 1)
  -h, --help             show this help

SIGHUP reloads every device from its plugin file with the device still attached (save-state,
swap, load-state); a plugin that fails to load leaves the old one running.
Stops cleanly on SIGINT or SIGTERM: closes the sockets, removes them, prints final stats.
`;

interface ServeOptions {
  specs: DeviceSpec[];
  logJson: boolean;
  statsIntervalS: number | undefined;
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw usageError(
      `${name} must be a positive integer (got '${value}')`,
      USAGE.split('\n')[0] ?? '',
    );
  }
  return n;
}

function parseServe(args: string[]): ServeOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      socket: { type: 'string', multiple: true },
      instances: { type: 'string' },
      stream: { type: 'string' },
      policy: { type: 'string' },
      sha256: { type: 'string' },
      engine: { type: 'string' },
      'budget-ms': { type: 'string' },
      'memory-mib': { type: 'string' },
      'log-json': { type: 'boolean', default: false },
      'stats-interval': { type: 'string' },
    },
  });
  const [pluginArg, ...extra] = positionals;
  if (pluginArg === undefined) throw usageError('missing <plugin>', 'see vfiobox serve --help');
  if (extra.length)
    throw usageError(`unexpected argument '${extra[0]}'`, 'see vfiobox serve --help');
  const sockets = values.socket ?? [];
  if (sockets.length === 0) throw usageError('missing --socket PATH', 'see vfiobox serve --help');
  const instances = positiveInt(values.instances, '--instances');
  if (instances !== undefined && sockets.length !== 1) {
    throw usageError('--instances takes exactly one --socket', 'see vfiobox serve --help');
  }
  if (values.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(values.sha256)) {
    throw usageError(
      `--sha256 must be 64 hex digits (got '${values.sha256}')`,
      'vfiobox inspect <plugin> prints it',
    );
  }
  const pluginPath = resolvePlugin(pluginArg);
  const base = pluginArg.replace(/^.*\//, '').replace(/\.wasm$/, '');
  const paths = instances
    ? Array.from({ length: instances }, (_, i) => `${sockets[0]}.${i}`)
    : sockets;
  const many = paths.length > 1;
  const memoryMib = positiveInt(values['memory-mib'], '--memory-mib');
  const engine = engineOption(values.engine, 'serve');
  const specs = paths.map((socketPath, i) => ({
    name: many ? `${base}#${i}` : base,
    pluginPath,
    socketPath,
    policyPath: values.policy,
    expectSha256: values.sha256?.toLowerCase(),
    stream: values.stream && many ? `${values.stream}.${i}` : values.stream,
    engine,
    budgetMs: positiveInt(values['budget-ms'], '--budget-ms'),
    memoryBytes: memoryMib ? memoryMib * 1024 * 1024 : undefined,
  }));
  const interval = values['stats-interval'];
  const statsIntervalS = interval === undefined ? undefined : Number(interval);
  if (statsIntervalS !== undefined && !(statsIntervalS > 0)) {
    throw usageError(`--stats-interval must be a positive number (got '${interval}')`, '');
  }
  return { specs, logJson: values['log-json'] ?? false, statsIntervalS };
}

/** JSON for events: bigints (IOVAs, sizes) as 0x-hex strings, which JSON cannot carry. */
export function eventJson(e: unknown): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

/** One human line for an event (the plain log when stdout is not a terminal). */
export function formatEvent(e: ServeEvent): string {
  const { event, device, ...rest } = e;
  const detail = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : eventJson(v)}`)
    .join(' ');
  return `vfiobox: ${device}: ${event}${detail ? ` ${detail}` : ''}`;
}

function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}

/** One stats line per device; `previous` (the last sample) turns counts into rates. */
export function formatStats(
  s: DeviceRunStats,
  previous: DeviceRunStats | undefined,
  dtS: number,
): string {
  const rates = Object.entries(s.regionAccesses)
    .filter(([, n]) => n > 0)
    .map(([region, n]) => {
      const before = previous?.regionAccesses[region] ?? 0;
      const rate = previous ? Math.round((n - before) / dtS) : n;
      return `r${region}:${rate}${previous ? '/s' : ''}`;
    });
  const d = s.device;
  return [
    `${s.name.padEnd(12)} ${s.connected ? 'connected   ' : 'waiting     '}`,
    `req ${sum(s.requests)}`,
    `${rates.join(' ') || 'no accesses'}`,
    ...(s.directAccesses > 0 ? [`direct ${s.directAccesses}`] : []),
    ...(s.directDma > 0 ? [`dma ${s.directDma}`] : []),
    ...(s.windowsMapped + s.windowsRefused > 0
      ? [`windows ${s.windowsMapped}${s.windowsRefused ? ` (${s.windowsRefused} refused)` : ''}`]
      : []),
    `irqs ${d.irqs}`,
    `denied ${sum(d.denied)}`,
    `fences ${d.fences}${d.fenced ? ' (FENCED)' : ''}`,
    `restarts ${d.restarts + s.watchdogRestarts}`,
  ].join('  ');
}

function waitForSignal(io: CliIo): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    io.signal?.addEventListener('abort', () => done('abort'), { once: true });
  });
}

/** SIGHUP: hot reload every device from its plugin file (save-state -> swap -> load-state). */
async function reloadAll(devices: DeviceSupervisor[], log: (e: ServeEvent) => void): Promise<void> {
  for (const d of devices) {
    try {
      await d.reload(d.spec.pluginPath);
    } catch (err) {
      log({ event: 'reload-failed', device: d.spec.name, message: (err as Error).message });
    }
  }
}

async function sampleAll(devices: DeviceSupervisor[]): Promise<DeviceRunStats[]> {
  const all = await Promise.all(devices.map((d) => d.stats().catch(() => undefined)));
  return all.filter((s): s is DeviceRunStats => s !== undefined);
}

/**
 * Where serve's output goes. On a terminal, event lines scroll above a live block of stats
 * lines that is redrawn in place (erased, the event printed, the block drawn again); otherwise
 * events go to stderr and each stats sample is printed as plain lines on stdout.
 */
class Output {
  #io: CliIo;
  #block: string[] = [];
  #drawn = 0;
  constructor(io: CliIo) {
    this.#io = io;
  }
  event(line: string): void {
    if (!this.#io.isTTY) {
      this.#io.stderr.write(`${line}\n`);
      return;
    }
    this.#erase();
    this.#io.stdout.write(`${line}\n`);
    this.#draw();
  }
  stats(lines: string[]): void {
    this.#block = lines;
    if (!this.#io.isTTY) {
      this.#io.stdout.write(`${lines.join('\n')}\n`);
      return;
    }
    this.#erase();
    this.#draw();
  }
  #erase(): void {
    if (this.#drawn) this.#io.stdout.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }
  #draw(): void {
    if (!this.#block.length) return;
    this.#io.stdout.write(`${this.#block.join('\n')}\n`);
    this.#drawn = this.#block.length;
  }
}

function startStatsView(devices: DeviceSupervisor[], out: Output, intervalS: number): () => void {
  let previous: DeviceRunStats[] = [];
  const timer = setInterval(async () => {
    const now = await sampleAll(devices);
    out.stats(
      now.map((s) =>
        formatStats(
          s,
          previous.find((p) => p.name === s.name),
          intervalS,
        ),
      ),
    );
    previous = now;
  }, intervalS * 1000);
  return () => clearInterval(timer);
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve a device plugin to a VMM over vfio-user',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const opts = parseServe(args);
    const out = new Output(io);
    const log = (e: ServeEvent) => out.event(opts.logJson ? eventJson(e) : formatEvent(e));
    const devices = opts.specs.map((spec) => new DeviceSupervisor(spec));
    for (const d of devices) d.on('event', log);
    try {
      for (const d of devices) {
        await d.start();
        // Always on stderr, whatever the view: scripts wait for this line.
        io.stderr.write(`listening ${d.spec.socketPath}\n`);
      }
    } catch (err) {
      await Promise.all(devices.map((d) => d.stop()));
      throw err instanceof Error ? err : new ConfigError('ERR_VFIOBOX_SERVE', String(err));
    }
    const interval = opts.statsIntervalS ?? (io.isTTY ? 1 : undefined);
    const stopView = interval ? startStatsView(devices, out, interval) : () => undefined;
    const onHup = () => void reloadAll(devices, log);
    process.on('SIGHUP', onHup);
    const why = await waitForSignal(io);
    process.off('SIGHUP', onHup);
    stopView();
    out.stats([]); // the live block goes; the final stats are printed as event lines
    const final = await sampleAll(devices);
    for (const s of final) {
      if (opts.logJson) log({ event: 'stats', device: s.name, stats: s });
      else out.event(`vfiobox: final: ${formatStats(s, undefined, 1)}`);
    }
    await Promise.all(devices.map((d) => d.stop()));
    io.stderr.write(`vfiobox: stopped (${why})\n`);
    return 0;
  },
};

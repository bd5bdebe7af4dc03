// SPDX-License-Identifier: MIT
// Host side of lab-vu (test/lab-vu/README.md): runs `vfiobox serve` processes, boots the guest
// through boot.sh, and reads what the guest, the server and QEMU's trace said.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from build/test/lab-vu/). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BOOT = join(ROOT, 'test', 'lab-vu', 'boot.sh');
/** The CLI under test: the bundle by default; VFIOBOX_LAB_VU_CLI=build/host/cli/bin.js tries tsc's output. */
const CLI = resolve(ROOT, process.env.VFIOBOX_LAB_VU_CLI ?? join('dist', 'vfiobox.mjs'));

export interface Check {
  ok: boolean;
  detail: string;
}

export interface BootResult {
  /** boot.sh's status: 0 all passed, 1 a check failed, 125 rig failure */
  code: number;
  /** by check name ("edu0.ident"); the last line wins if a name repeats */
  checks: Map<string, Check>;
  lines: string[];
  stderr: string;
}

interface Exited {
  code: number;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess, echo: boolean): Promise<Exited> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (echo) process.stderr.write(d);
    });
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` }));
  });
}

/** Runs boot.sh with the given arguments; its progress lines go to our stderr. */
export function runBootScript(args: string[]): Promise<Exited> {
  const child = spawn('bash', [BOOT, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env },
  });
  return collect(child, true);
}

export function parseChecks(stdout: string): Map<string, Check> {
  const checks = new Map<string, Check>();
  for (const line of stdout.split('\n')) {
    const m = /^VU (\S+) (ok|fail) ?(.*)$/.exec(line);
    if (m?.[1] && m[2]) checks.set(m[1], { ok: m[2] === 'ok', detail: m[3] ?? '' });
  }
  return checks;
}

/** Boots the guest with one vfio-user-pci device per socket path. */
export async function bootGuest(sockets: string[], outDir: string): Promise<BootResult> {
  const r = await runBootScript(['--out', outDir, '--guest-timeout', '30', ...sockets]);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('VU '));
  return { code: r.code, checks: parseChecks(r.stdout), lines, stderr: r.stderr };
}

/** One `--log-json` object from `vfiobox serve`. */
export interface ServeEvent {
  event: string;
  device?: string;
  [key: string]: unknown;
}

export interface ServeProcess {
  events: ServeEvent[];
  stderr: () => string;
  /** SIGTERM, then the exit status (null: killed after the grace period) */
  stop: () => Promise<number | null>;
}

/** Starts `vfiobox serve <plugin> --socket <socket> --log-json [extra]`, resolves once ready. */
export function startServe(
  plugin: string,
  socket: string,
  extra: string[] = [],
  readyTimeoutMs = 120_000,
): Promise<ServeProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: npm run bundle`);
  const wasm = join(ROOT, 'build', 'plugins', `${plugin}.wasm`);
  if (!existsSync(wasm)) throw new Error(`${wasm} missing: bash scripts/build-plugins.sh`);
  const child = spawn(
    process.execPath,
    [CLI, 'serve', wasm, '--socket', socket, '--log-json', ...extra],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const events: ServeEvent[] = [];
  let text = '';
  let partial = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve ${plugin}: no 'listening' within ${readyTimeoutMs} ms:\n${text}`));
    }, readyTimeoutMs);
    child.stderr?.on('data', (d: Buffer) => {
      text += d.toString();
      partial += d.toString();
      const rows = partial.split('\n');
      partial = rows.pop() ?? '';
      for (const row of rows) {
        if (row.startsWith('{')) {
          try {
            events.push(JSON.parse(row) as ServeEvent);
          } catch {
            // not one of ours: kept in stderr()
          }
        }
        if (row === `listening ${socket}`) {
          clearTimeout(timer);
          resolve({ events, stderr: () => text, stop });
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve ${plugin} exited (${code ?? signal}) before listening:\n${text}`));
    });
  });

  async function stop(): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const grace = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(grace);
    return code;
  }
}

/**
 * The peer of `serve --stream unix:PATH`: collects the device's output and, once `expect` has
 * arrived, answers with `reply` (the guest reads it back).
 */
export interface StreamPeer {
  received: () => string;
  close: () => void;
}

export function connectStream(path: string, expect: string, reply: string): Promise<StreamPeer> {
  return new Promise((resolve, reject) => {
    const sock: Socket = createConnection(path);
    let got = '';
    let answered = false;
    sock.on('connect', () => resolve({ received: () => got, close: () => sock.destroy() }));
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (!answered && got.includes(expect)) {
        answered = true;
        sock.write(reply);
      }
    });
  });
}

/** What QEMU's `-trace 'vfio_user_*'` log says about DMA_MAP traffic. */
export interface TraceSummary {
  dmaMaps: number;
  /** most DMA_MAP requests QEMU had sent at once without their reply */
  maxMapsInFlight: number;
  /** commands QEMU received replies for, by command number */
  replies: Map<number, number>;
}

const CMD_DMA_MAP = 2; // vfio-user spec, "Commands" table

/**
 * QEMU traces vfio_user_dma_map just before it queues the request, then vfio_user_send_write
 * (id) when the bytes leave, and vfio_user_recv_hdr (id, cmd) for each reply
 * (hw/vfio-user/{container,proxy}.c). A map id is in flight from its send to its reply.
 */
export function summariseTrace(text: string): TraceSummary {
  const inFlight = new Set<number>();
  const replies = new Map<number, number>();
  let mapPending = 0;
  let dmaMaps = 0;
  let maxMapsInFlight = 0;
  for (const line of text.split('\n')) {
    if (/vfio_user_dma_map /.test(line)) {
      mapPending++;
      dmaMaps++;
      continue;
    }
    const sent = /vfio_user_send_write +id 0x([0-9a-f]+)/.exec(line);
    if (sent?.[1] && mapPending > 0) {
      mapPending--;
      inFlight.add(Number.parseInt(sent[1], 16));
      maxMapsInFlight = Math.max(maxMapsInFlight, inFlight.size);
      continue;
    }
    const hdr = /vfio_user_recv_hdr .*id 0x([0-9a-f]+) cmd 0x([0-9a-f]+)/.exec(line);
    if (hdr?.[1] && hdr[2]) {
      const cmd = Number.parseInt(hdr[2], 16);
      replies.set(cmd, (replies.get(cmd) ?? 0) + 1);
      if (cmd === CMD_DMA_MAP) inFlight.delete(Number.parseInt(hdr[1], 16));
    }
  }
  return { dmaMaps, maxMapsInFlight, replies };
}

export function readTrace(outDir: string): string {
  const path = join(outDir, 'qemu-trace.log');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

// SPDX-License-Identifier: MIT
// `vfiobox test <plugin.wasm> <trace.jsonl> [--record <script.jsonl>]`: golden-trace testing of
// a plugin without a VM. Replay runs the trace's inputs (reads, writes, advances, resets, RAM
// and stream input) against a fresh instance on the harness's virtual clock and compares what
// comes back (read values, interrupts, DMA, stream output) event by event
// (host/harness/trace.ts). --record runs a script's inputs (reads need no value; outputs in it
// are ignored, so a trace re-records itself) and writes the full trace: a new golden file.
// The plugin gets what its manifest requests, as `vfiobox serve` without a policy grants.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../errors.js';
import { createHarness, performInput } from '../../harness/harness.js';
import {
  compareTraces,
  formatTrace,
  isInput,
  parseTrace,
  type TraceEvent,
  type TraceMismatch,
} from '../../harness/trace.js';
import type { CompiledPlugin, EngineName } from '../../plugins/engine.js';
import { type Grant, grantFromManifest } from '../../plugins/grants.js';
import { loadPlugin } from '../../plugins/loader.js';
import { resolvePlugin } from '../../serve/bundled.js';
import { engineOption, usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

export const TRACE_ERROR = 'ERR_VFIOBOX_TRACE';
/** Mismatches printed before the rest are summarised in one line. */
const MAX_SHOWN = 20;

const USAGE = `usage: vfiobox test <plugin.wasm> <trace.jsonl> [--record <script.jsonl>] [--engine E]

Replays a golden trace against the plugin on a virtual clock and compares every read value,
interrupt, DMA transfer and byte of stream output. Prints "ok <n> events", or each mismatch
(event index, trace line, op, expected, actual) and exits 1.

A trace is JSON lines, one event each (blank lines and lines starting with # are skipped):
  {"op":"write","region":0,"offset":8,"width":4,"value":"0x5"}
  {"op":"advance","ns":10000}
  {"op":"irq","index":0,"sub":0}
  {"op":"read","region":0,"offset":8,"width":4,"value":"0x78"}
Inputs: read, write, advance, reset, ram-set {iova,hex}, stream-in {hex}. Outputs: irq
{index,sub}, dma-read/dma-write {iova,len}, stream-out {hex}. Region 7 is config space.

The plugin is granted what its manifest requests; guest RAM is 1 MiB at IOVA 0.

options:
  --record <script.jsonl>  run the inputs of the script (reads without "value"; outputs in it
                           are ignored) and write the full trace to <trace.jsonl>
  --engine v8|wasmtime     the engine that runs the plugin (default v8; wasmtime runs C
                           plugins only: docs/plugins.md "Choosing an engine")
  -h, --help               show this help
`;

/** A trace file's events, with the line each came from. */
export interface TraceFile {
  path: string;
  events: TraceEvent[];
  /** lines[i] is the 1-based line of events[i] */
  lines: number[];
  /** comments[i]: the '#' lines just before events[i]; comments[events.length]: after the last */
  comments: string[][];
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError(TRACE_ERROR, `${what} ${path}: ${why}`);
  }
}

/** Where the events are (parseTrace skips blank and '#' lines) and the comments before each. */
function layout(text: string): { lines: number[]; comments: string[][] } {
  const lines: number[] = [];
  const comments: string[][] = [[]];
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (t.startsWith('#')) comments[comments.length - 1]?.push(t);
    else if (t) {
      lines.push(i + 1);
      comments.push([]);
    }
  });
  return { lines, comments };
}

/**
 * Reads and checks a trace file. With `script`, reads may omit their value (it is what the
 * recording fills in).
 * @throws ConfigError naming the file, the line and what is wrong with it
 */
export function readTraceFile(path: string, opts: { script?: boolean } = {}): TraceFile {
  const text = readText(path, opts.script ? 'script' : 'trace');
  const source = opts.script ? withReadValues(text) : text;
  let events: TraceEvent[];
  try {
    events = parseTrace(source);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new ConfigError(TRACE_ERROR, `${path}: ${err.message}`, 'see vfiobox test --help');
  }
  return { path, events, ...layout(text) };
}

/** Gives a script's value-less reads a placeholder, leaving lines where they are. */
function withReadValues(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return line;
      let value: unknown;
      try {
        value = JSON.parse(t);
      } catch {
        return line; // parseTrace reports it with its line number
      }
      const rec = value as Record<string, unknown> | null;
      if (rec && typeof rec === 'object' && rec.op === 'read' && rec.value === undefined) {
        return JSON.stringify({ ...rec, value: '' });
      }
      return line;
    })
    .join('\n');
}

export interface TraceRun {
  /** the trace the run produced */
  events: TraceEvent[];
  /** inputAt[i]: where script event i's input is in `events` (-1 for an output) */
  inputAt: number[];
}

/**
 * Runs the inputs of `file` on a fresh harness and returns the trace it produced. An input the
 * harness cannot perform (a region the device lacks, RAM outside guest memory, a bad number)
 * is a ConfigError naming it.
 */
export function runTrace(
  plugin: CompiledPlugin,
  grant: Grant,
  file: TraceFile,
  memoryBytes?: number,
): TraceRun {
  const h = createHarness({ plugin, grant, name: 'test', memoryBytes });
  try {
    const inputAt = file.events.map((e, i) => {
      if (!isInput(e)) return -1;
      const at = h.trace.length;
      try {
        performInput(h, e);
      } catch (err) {
        const where = `event ${i} (line ${file.lines[i] ?? '?'}) ${e.op}`;
        throw new ConfigError(TRACE_ERROR, `${file.path}: ${where}: ${(err as Error).message}`);
      }
      return at;
    });
    return { events: h.trace.slice(), inputAt };
  } finally {
    h.close();
  }
}

/** The recorded trace as text, with the script's comments before the inputs they preceded. */
export function formatRecorded(script: TraceFile, run: TraceRun): string {
  const before = new Map<number, string[]>();
  let carry: string[] = [];
  script.events.forEach((_, i) => {
    carry = carry.concat(script.comments[i] ?? []);
    const at = run.inputAt[i] ?? -1;
    if (at < 0) return;
    before.set(at, carry);
    carry = [];
  });
  carry = carry.concat(script.comments[script.events.length] ?? []);
  const out = run.events.map((e, j) => {
    const notes = before.get(j) ?? [];
    return notes.map((c) => `${c}\n`).join('') + formatTrace([e]);
  });
  return out.join('') + carry.map((c) => `${c}\n`).join('');
}

const show = (e: TraceEvent | undefined): string => (e ? JSON.stringify(e) : '(none)');

/** One line per mismatch: where, which op, what the trace says and what the plugin did. */
export function formatMismatch(m: TraceMismatch, lines: readonly number[]): string {
  const op = m.expected?.op ?? m.actual?.op ?? '?';
  const line = lines[m.index];
  const where =
    line === undefined ? `event ${m.index} (end of trace)` : `event ${m.index} (line ${line})`;
  return `mismatch at ${where} ${op}: expected ${show(m.expected)}, actual ${show(m.actual)}\n`;
}

async function load(pluginArg: string, engine: EngineName) {
  const loaded = await loadPlugin(resolvePlugin(pluginArg), { engine });
  return {
    compiled: loaded.compiled,
    grant: grantFromManifest(loaded.manifest),
    memoryBytes: loaded.manifest.budgets.memoryBytes,
  };
}

export const testCommand: Command = {
  name: 'test',
  summary: 'replay a golden trace against a plugin, or record one (--record)',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      options: { record: { type: 'string' }, engine: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
    const [pluginArg, tracePath, ...extra] = positionals;
    if (pluginArg === undefined || tracePath === undefined || extra.length > 0) {
      throw usageError(
        extra.length > 0
          ? `unexpected argument '${extra[0]}'`
          : 'test needs a plugin and a trace file',
        'usage: vfiobox test <plugin.wasm> <trace.jsonl> [--record <script.jsonl>]',
      );
    }
    const engine = engineOption(values.engine, 'test');
    if (values.record !== undefined) {
      const script = readTraceFile(values.record, { script: true });
      const { compiled, grant, memoryBytes } = await load(pluginArg, engine);
      const run = runTrace(compiled, grant, script, memoryBytes);
      try {
        writeFileSync(tracePath, formatRecorded(script, run));
      } catch (err) {
        throw new ConfigError(TRACE_ERROR, `trace ${tracePath}: ${(err as Error).message}`);
      }
      io.stdout.write(`recorded ${run.events.length} events to ${tracePath}\n`);
      return 0;
    }
    const trace = readTraceFile(tracePath);
    const { compiled, grant, memoryBytes } = await load(pluginArg, engine);
    const mismatches = compareTraces(
      trace.events,
      runTrace(compiled, grant, trace, memoryBytes).events,
      Infinity,
    );
    if (mismatches.length === 0) {
      io.stdout.write(`ok ${trace.events.length} events\n`);
      return 0;
    }
    for (const m of mismatches.slice(0, MAX_SHOWN)) io.stdout.write(formatMismatch(m, trace.lines));
    if (mismatches.length > MAX_SHOWN) {
      io.stdout.write(`... and ${mismatches.length - MAX_SHOWN} more\n`);
    }
    io.stdout.write(`FAIL ${mismatches.length} mismatches in ${trace.events.length} events\n`);
    return 1;
  },
};

// SPDX-License-Identifier: MIT
// Golden traces: what a test did to a device and what the device did back, one JSON object per
// line. Inputs (read, write, advance, ram-set, stream-in, reset) are replayed; outputs (irq,
// dma-read, dma-write, stream-out) and read values are compared. Numbers that can exceed 2^53
// (register values, IOVAs) are hex strings; a read the plugin refused has the errno name
// prefixed with '!' as its value ("!ENOTSUP").
//
//   {"op":"write","region":0,"offset":8,"width":4,"value":"0x5"}
//   {"op":"advance","ns":10000}
//   {"op":"irq","index":1,"sub":0}
//   {"op":"read","region":0,"offset":8,"width":4,"value":"0x78"}

export type TraceEvent =
  | { op: 'read' | 'write'; region: number; offset: number; width: number; value: string }
  | { op: 'advance'; ns: number }
  | { op: 'reset' }
  | { op: 'irq'; index: number; sub: number }
  | { op: 'dma-read' | 'dma-write'; iova: string; len: number }
  | { op: 'ram-set'; iova: string; hex: string }
  | { op: 'stream-in' | 'stream-out'; hex: string };

export type TraceOp = TraceEvent['op'];

const INPUTS: ReadonlySet<TraceOp> = new Set<TraceOp>([
  'read',
  'write',
  'advance',
  'reset',
  'ram-set',
  'stream-in',
]);

/** Whether the harness performs `event` on replay (else the device produces it). */
export function isInput(event: TraceEvent): boolean {
  return INPUTS.has(event.op);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) throw new TypeError(`expected hex bytes, got '${hex}'`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** JSON lines, one event per line, with a trailing newline. */
export function formatTrace(events: readonly TraceEvent[]): string {
  return events.map((e) => `${JSON.stringify(e)}\n`).join('');
}

const FIELDS: Readonly<Record<TraceOp, Readonly<Record<string, 'number' | 'string'>>>> = {
  read: { region: 'number', offset: 'number', width: 'number', value: 'string' },
  write: { region: 'number', offset: 'number', width: 'number', value: 'string' },
  advance: { ns: 'number' },
  reset: {},
  irq: { index: 'number', sub: 'number' },
  'dma-read': { iova: 'string', len: 'number' },
  'dma-write': { iova: 'string', len: 'number' },
  'ram-set': { iova: 'string', hex: 'string' },
  'stream-in': { hex: 'string' },
  'stream-out': { hex: 'string' },
};

/** Parses JSON lines (blank lines and lines starting with '#' are skipped). */
export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  text.split('\n').forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      throw new TypeError(`trace line ${i + 1}: ${String(err)}`);
    }
    events.push(checkEvent(value, i + 1));
  });
  return events;
}

function checkEvent(value: unknown, line: number): TraceEvent {
  const rec = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const fields = FIELDS[rec.op as TraceOp];
  if (!fields) throw new TypeError(`trace line ${line}: unknown op ${JSON.stringify(rec.op)}`);
  for (const [name, type] of Object.entries(fields)) {
    if (typeof rec[name] !== type) {
      throw new TypeError(`trace line ${line}: ${String(rec.op)}.${name}: expected a ${type}`);
    }
  }
  return rec as TraceEvent;
}

export interface TraceMismatch {
  /** index in the expected trace (or where the missing/extra event would be) */
  index: number;
  expected: TraceEvent | undefined;
  actual: TraceEvent | undefined;
}

interface Segment {
  input: { event: TraceEvent; index: number } | undefined;
  outputs: { event: TraceEvent; index: number }[];
}

/** Splits a trace at its inputs: each input with the outputs it caused. */
function segments(events: readonly TraceEvent[]): Segment[] {
  const out: Segment[] = [{ input: undefined, outputs: [] }];
  events.forEach((event, index) => {
    if (isInput(event)) out.push({ input: { event, index }, outputs: [] });
    else out[out.length - 1]?.outputs.push({ event, index });
  });
  return out;
}

const same = (a: TraceEvent | undefined, b: TraceEvent | undefined): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

/**
 * Compares two traces input by input, so one extra interrupt shows up as one mismatch rather
 * than shifting everything after it: each input must match (reads including their value) and
 * the outputs after it must match in order.
 */
export function compareTraces(
  expected: readonly TraceEvent[],
  actual: readonly TraceEvent[],
  limit = 100,
): TraceMismatch[] {
  const mismatches: TraceMismatch[] = [];
  const exp = segments(expected);
  const act = segments(actual);
  for (let s = 0; s < Math.max(exp.length, act.length) && mismatches.length < limit; s++) {
    const e = exp[s];
    const a = act[s];
    if (!same(e?.input?.event, a?.input?.event)) {
      mismatches.push({
        index: e?.input?.index ?? expected.length,
        expected: e?.input?.event,
        actual: a?.input?.event,
      });
    }
    const eo = e?.outputs ?? [];
    const ao = a?.outputs ?? [];
    const after = (eo[eo.length - 1]?.index ?? e?.input?.index ?? expected.length - 1) + 1;
    for (let j = 0; j < Math.max(eo.length, ao.length) && mismatches.length < limit; j++) {
      if (same(eo[j]?.event, ao[j]?.event)) continue;
      mismatches.push({
        index: eo[j]?.index ?? after,
        expected: eo[j]?.event,
        actual: ao[j]?.event,
      });
    }
  }
  return mismatches;
}

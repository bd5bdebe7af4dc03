// SPDX-License-Identifier: MIT
// Text output of the CLI: aligned tables, device cells, the one-line error format, and the
// "did you mean" suggestion. Pure functions: no I/O here.

import { ConfigError, PluginError, ProtocolError, VfioError } from '../errors.js';
import type { EngineName } from '../plugins/engine.js';
import { DEFAULT_ENGINE, ENGINE_NAMES, isEngineName } from '../plugins/engines/index.js';
import type { PciDevice } from '../sysfs/pci.js';

/** Left-aligned columns separated by two spaces; trailing spaces trimmed. */
export function formatTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

export function hex6(n: number): string {
  return n.toString(16).padStart(6, '0');
}

export const DEVICE_COLUMNS = ['BDF', 'VENDOR:DEVICE', 'CLASS', 'DRIVER', 'GROUP', 'CDEV', 'RESET'];

/** One row of `vfiobox list`; '-' for absent values. */
export function deviceRow(d: PciDevice): string[] {
  const group = d.iommuGroup === null ? '-' : `${d.noiommu ? 'noiommu-' : ''}${d.iommuGroup}`;
  return [
    d.bdf,
    `${hex4(d.vendorId)}:${hex4(d.deviceId)}`,
    hex6(d.classCode),
    d.driver ?? '-',
    group,
    d.cdev ?? '-',
    d.resetMethods.length ? d.resetMethods.join(',') : '-',
  ];
}

/**
 * Hints for VfioError codes, which carry none themselves. Keyed by `code`, never by text.
 */
const VFIO_HINTS: Readonly<Record<string, string>> = {
  EACCES: 'needs root: run with sudo',
  EPERM: 'needs root: run with sudo',
  EBUSY: 'the device or its IOMMU group is in use by another process',
  ERR_VFIO_BIND_FAILED: 'see `dmesg | tail` for why vfio-pci refused it',
};

/** Hints for one operation's errno, looked up before VFIO_HINTS: `op:code`. */
const OP_HINTS: Readonly<Record<string, string>> = {
  'bind:EADDRINUSE':
    'another server is listening on that socket: stop it, or pick another --socket path',
  'bind:ENOENT': "the socket's directory does not exist: create it, or pick another --socket path",
  'bind:EACCES': 'no permission to create the socket there: pick a directory you can write',
};

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Code of the ConfigError for a malformed command line (exit code 2). */
export const USAGE_ERROR = 'ERR_VFIO_USAGE';

/** A usage error: printed like any ConfigError, but the CLI exits with 2. */
export function usageError(message: string, hint: string): ConfigError {
  return new ConfigError(USAGE_ERROR, message, hint);
}

/** The value of an --engine option. */
export function engineOption(value: string | undefined, command: string): EngineName {
  if (value === undefined) return DEFAULT_ENGINE;
  if (isEngineName(value)) return value;
  throw usageError(
    `--engine must be one of ${ENGINE_NAMES.join(', ')} (got '${value}')`,
    `see vfiobox ${command} --help`,
  );
}

/** Whether `err` is an error the user can act on (printed without a stack). */
export function isExpectedError(
  err: unknown,
): err is ConfigError | VfioError | PluginError | ProtocolError {
  return (
    err instanceof ConfigError ||
    err instanceof VfioError ||
    err instanceof PluginError ||
    err instanceof ProtocolError
  );
}

/**
 * The lines printed for an expected error: `vfiobox: <message>` and, when known,
 * `hint: <fix>`. Each is a single line whatever the message contains.
 */
export function formatError(err: ConfigError | VfioError | PluginError | ProtocolError): string {
  const hint =
    err instanceof ConfigError
      ? err.hint
      : err instanceof VfioError
        ? (OP_HINTS[`${err.op}:${err.code}`] ?? VFIO_HINTS[err.code])
        : undefined;
  const lines = [`vfiobox: ${oneLine(err.message)}`];
  if (hint) lines.push(`hint: ${oneLine(hint)}`);
  return `${lines.join('\n')}\n`;
}

/** Levenshtein distance, for suggestions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The closest candidate to `input`: among the candidates it is a prefix of (if any, else all),
 * the nearest by edit distance, if within a third of the longer word (at least 2); undefined
 * when nothing is close.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const prefixed = candidates.filter((c) => input.length > 0 && c.startsWith(input));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of prefixed.length > 0 ? prefixed : candidates) {
    const distance = editDistance(input, c);
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  if (prefixed.length > 0) return best;
  const limit = Math.max(2, Math.floor(Math.max(input.length, best?.length ?? 0) / 3));
  return bestDistance <= limit ? best : undefined;
}

// SPDX-License-Identifier: MIT
// Small validators for the JSON that users and plugin authors write (manifests, policies).
// Every failure is a ConfigError naming the file, the field path, what was expected and what
// was found: `edu.manifest.json: capabilities.irq.vectors[1]: expected an integer 0..2047, got "1"`.

import { ConfigError } from '../errors.js';

export class Fields {
  constructor(
    /** names the document in messages: a file path, or 'embedded manifest of x.wasm' */
    readonly source: string,
    readonly code: string,
    readonly hint?: string,
  ) {}

  fail(path: string, expected: string, got: unknown): never {
    throw new ConfigError(
      this.code,
      `${this.source}: ${path || '(top level)'}: expected ${expected}, got ${shown(got)}`,
      this.hint,
    );
  }

  object(value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, 'an object', value);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) {
        this.fail(join(path, key), `no such field (known: ${allowed.join(', ')})`, record[key]);
      }
    }
    return record;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'an array', value);
    return value;
  }

  string(value: unknown, path: string, pattern?: RegExp, what = 'a string'): string {
    if (typeof value !== 'string' || (pattern && !pattern.test(value)))
      this.fail(path, what, value);
    return value;
  }

  boolean(value: unknown, path: string): boolean {
    if (typeof value !== 'boolean') this.fail(path, 'true or false', value);
    return value;
  }

  integer(value: unknown, path: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(path, `an integer ${min}..${max}`, value);
    }
    return value;
  }

  /** A 64-bit address or size: a safe integer, or a decimal/0x-hex string for larger values. */
  u64(value: unknown, path: string): bigint {
    let v: bigint | undefined;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) v = BigInt(value);
    if (typeof value === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(value)) v = BigInt(value);
    if (v === undefined || v >= 1n << 64n) {
      this.fail(path, 'a 64-bit unsigned integer (a number, or a string such as "0x10000")', value);
    }
    return v;
  }

  optional<T>(
    record: Record<string, unknown>,
    key: string,
    read: (v: unknown) => T,
  ): T | undefined {
    return record[key] === undefined ? undefined : read(record[key]);
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'bigint') return `${value}`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** JSON.parse with a ConfigError naming the file on a syntax error. */
export function parseJson(text: string, source: string, code: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(code, `${source}: not valid JSON: ${(err as Error).message}`);
  }
}

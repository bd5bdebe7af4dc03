// SPDX-License-Identifier: MIT
// wasi:io@0.2 resources for plugins (error, poll, streams) and the stdio streams built on them.
// Types and semantics: WASI 0.2 wit/io/{error,poll,streams}.wit. jco's glue (1.12) hands these
// classes to the component: it checks returned resources with `instanceof` and calls methods on
// the very objects we returned, so state lives on the instances. An `err` result is thrown as
// `{ payload }` (the glue's getErrorPayload); anything else thrown traps the plugin.
//
// Nothing here may block: a plugin runs on the device's thread between guest accesses. A poll or
// block that would have to wait throws PluginError kind 'denied' (the plugin should arm a
// vfiobox clock timer instead); streams never wait, so their pollables are always ready.

import type { LogLevel } from '../engine.js';
import { deniedError } from './deny.js';

/** `wasi:io/error.error`: only the host makes them; we never do, the class is for the glue. */
export class IoError {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  toDebugString(): string {
    return this.#text;
  }
}

/** `wasi:io/poll.pollable`: ready now, or at a monotonic-clock instant. */
export class Pollable {
  readonly #ready: () => boolean;
  readonly #onBlock: () => never;
  constructor(ready: () => boolean, onBlock: () => never) {
    this.#ready = ready;
    this.#onBlock = onBlock;
  }
  ready(): boolean {
    return this.#ready();
  }
  block(): void {
    if (!this.#ready()) this.#onBlock();
  }
}

/** `wasi:io/poll.poll`: the indices of the ready pollables; never waits for one. */
export function makePoll(plugin: string) {
  return function poll(pollables: readonly Pollable[]): Uint32Array {
    if (pollables.length === 0) {
      throw new TypeError('wasi:io/poll#poll: expected at least one pollable (WASI traps on none)');
    }
    const ready: number[] = [];
    pollables.forEach((p, i) => {
      if (p.ready()) ready.push(i);
    });
    if (ready.length === 0) {
      throw deniedError(plugin, 'wasi:io/poll#poll', 'it would block the device thread');
    }
    return Uint32Array.from(ready);
  };
}

const CLOSED = { payload: { tag: 'closed' } } as const;
const ALWAYS_READY = () => true;
const neverBlocks = (): never => {
  throw new Error('unreachable: an always-ready pollable blocked');
};

/** `wasi:io/streams.input-stream` at end of stream: stdin of a plugin is empty. */
export class InputStream {
  read(_len: bigint): Uint8Array {
    throw CLOSED;
  }
  blockingRead(_len: bigint): Uint8Array {
    throw CLOSED;
  }
  skip(_len: bigint): bigint {
    throw CLOSED;
  }
  blockingSkip(_len: bigint): bigint {
    throw CLOSED;
  }
  subscribe(): Pollable {
    return new Pollable(ALWAYS_READY, neverBlocks);
  }
}

/** Longest line handed to the log; longer output is split (the log is for people). */
export const MAX_LINE_BYTES = 1024;
/** What `check-write` permits per write: a write is never refused, this only paces the guest. */
const WRITE_BUDGET = 4096n;

/**
 * `wasi:io/streams.output-stream` that turns bytes into log lines: split at '\n' (a '\r' before
 * it dropped), decoded as UTF-8 with replacement, a partial line kept until the next newline, a
 * flush, or MAX_LINE_BYTES. It never fails and never blocks.
 */
export class OutputStream {
  readonly #level: LogLevel;
  readonly #sink: (level: LogLevel, message: string) => void;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  constructor(level: LogLevel, sink: (level: LogLevel, message: string) => void) {
    this.#level = level;
    this.#sink = sink;
  }

  checkWrite(): bigint {
    return WRITE_BUDGET;
  }

  write(contents: Uint8Array): void {
    let start = 0;
    for (let i = 0; i < contents.length; i++) {
      if (contents[i] === 0x0a) {
        this.#append(contents.subarray(start, i));
        this.#emit();
        start = i + 1;
      } else if (this.#pendingBytes + (i + 1 - start) >= MAX_LINE_BYTES) {
        this.#append(contents.subarray(start, i + 1));
        this.#emit();
        start = i + 1;
      }
    }
    this.#append(contents.subarray(start));
  }

  blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
    this.flush();
  }

  flush(): void {
    if (this.#pendingBytes > 0) this.#emit();
  }

  blockingFlush(): void {
    this.flush();
  }

  writeZeroes(len: bigint): void {
    // Zero bytes are not text; count them rather than log them.
    if (len > 0n) this.write(new TextEncoder().encode(`<${len} zero bytes>`));
  }

  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
    this.flush();
  }

  splice(_src: InputStream, _len: bigint): bigint {
    throw CLOSED; // The only input stream a plugin can have is the empty stdin.
  }

  blockingSplice(src: InputStream, len: bigint): bigint {
    return this.splice(src, len);
  }

  subscribe(): Pollable {
    return new Pollable(ALWAYS_READY, neverBlocks);
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pending.push(bytes.slice());
    this.#pendingBytes += bytes.length;
  }

  #emit(): void {
    const line = new Uint8Array(this.#pendingBytes);
    let at = 0;
    for (const part of this.#pending) {
      line.set(part, at);
      at += part.length;
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
    this.#sink(this.#level, new TextDecoder().decode(line.subarray(0, end)));
  }
}

/** jco's glue calls `[Symbol.dispose]` when the guest drops a resource it owned. */
const DISPOSE: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('dispose');
Object.defineProperty(OutputStream.prototype, DISPOSE, {
  value(this: OutputStream) {
    this.flush();
  },
});

// SPDX-License-Identifier: MIT
// An in-memory vfio-user transport pair (libvfio-user's test transport idea): what one end sends
// the other receives, whole messages with their fds, delivered in order on a later macrotask as a
// socket would. fds are plain numbers here; closeFd() only records them. A ScriptedPeer plays the
// server: it waits for the client's messages and answers them by hand.

import type { Transport } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';

type MessageCb = (msg: Uint8Array, fds: number[]) => void;
type CloseCb = (errno: number) => void;

export class MemoryEnd implements Transport {
  peer: MemoryEnd | undefined;
  closed = false;
  /** fds this end was asked to close */
  readonly closedFds: number[] = [];
  #onMessage: MessageCb | undefined;
  #onClose: CloseCb | undefined;

  send(bytes: Uint8Array, fds: number[] = []): void {
    if (this.closed) throw new Error('send on a closed MemoryEnd');
    const peer = this.peer;
    const copy = bytes.slice();
    setImmediate(() => {
      if (peer && !peer.closed) peer.#onMessage?.(copy, [...fds]);
    });
  }

  onMessage(cb: MessageCb): void {
    this.#onMessage = cb;
  }

  onClose(cb: CloseCb): void {
    this.#onClose = cb;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const peer = this.peer;
    setImmediate(() => {
      if (peer && !peer.closed) {
        peer.closed = true;
        peer.#onClose?.(0);
      }
    });
  }

  closeFd(fd: number): void {
    this.closedFds.push(fd);
  }
}

export function transportPair(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export interface Received {
  header: p.Header;
  payload: Uint8Array;
  fds: number[];
}

/** What a ScriptedPeer needs of its end (a MemoryEnd, or a framed net.Socket). */
export interface PeerEnd {
  send(bytes: Uint8Array, fds?: number[]): void;
  onMessage(cb: MessageCb): void;
  close(): void;
}

/** The server side of a pair, answering by hand. */
export class ScriptedPeer<End extends PeerEnd = MemoryEnd> {
  readonly end: End;
  readonly #queue: Received[] = [];
  readonly #waiters: Array<(m: Received) => void> = [];
  #nextId = 0x8000;

  constructor(end: End) {
    this.end = end;
    end.onMessage((bytes, fds) => {
      const { header, payload } = p.decodeMessage(bytes);
      const msg = { header, payload, fds };
      const waiter = this.#waiters.shift();
      if (waiter) waiter(msg);
      else this.#queue.push(msg);
    });
  }

  /** The next message the client sent (waits for it). */
  next(): Promise<Received> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The next `n` messages. */
  async take(n: number): Promise<Received[]> {
    const out: Received[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }

  reply(to: p.Header, payload?: Uint8Array, fds: number[] = []): void {
    const header = { msgId: to.msgId, command: to.command, flags: p.FLAG_TYPE_REPLY, error: 0 };
    this.end.send(p.encodeMessage(header, payload), fds);
  }

  replyError(to: p.Header, errno: number): void {
    const flags = p.FLAG_TYPE_REPLY | p.FLAG_ERROR;
    this.end.send(p.encodeMessage({ msgId: to.msgId, command: to.command, flags, error: errno }));
  }

  /** Sends a server-to-client command and waits for the client's reply. */
  async command(
    command: number,
    payload: Uint8Array,
    opts: { fds?: number[]; flags?: number } = {},
  ): Promise<Received> {
    const msgId = this.#nextId++;
    const flags = p.FLAG_TYPE_COMMAND | (opts.flags ?? 0);
    this.end.send(p.encodeMessage({ msgId, command, flags, error: 0 }, payload), opts.fds ?? []);
    return this.next();
  }
}

/** A client-server pair over memory. */
export function memoryPair(): { client: MemoryEnd; server: ScriptedPeer } {
  const [client, server] = transportPair();
  return { client, server: new ScriptedPeer(server) };
}

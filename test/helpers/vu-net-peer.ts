// SPDX-License-Identifier: MIT
// A hand-scripted vfio-user "server" on a real UNIX socket (node:net), so the client's native
// transport (VfioUserSocket) is exercised without the native server. node:net cannot pass fds,
// so this peer neither sends nor receives any.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as p from '../../host/vfio-user/protocol.js';
import { type PeerEnd, ScriptedPeer } from './vu-memory-transport.js';

/** Frames a net.Socket by the header's msg_size. */
export class NetEnd implements PeerEnd {
  readonly socket: Socket;
  #buffered = Buffer.alloc(0);
  #cb: ((msg: Uint8Array, fds: number[]) => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => this.#onData(chunk));
    socket.on('error', () => {});
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  onMessage(cb: (msg: Uint8Array, fds: number[]) => void): void {
    this.#cb = cb;
  }

  close(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffered = Buffer.concat([this.#buffered, chunk]);
    while (this.#buffered.byteLength >= p.HEADER_SIZE) {
      const size = p.decodeHeader(this.#buffered).msgSize;
      if (size < p.HEADER_SIZE) throw new Error(`peer framing lost: msg_size ${size}`);
      if (this.#buffered.byteLength < size) return;
      const msg = new Uint8Array(this.#buffered.subarray(0, size));
      this.#buffered = this.#buffered.subarray(size);
      this.#cb?.(msg, []);
    }
  }
}

export interface NetPeerServer {
  path: string;
  server: Server;
  /** The ScriptedPeer for the next connection. */
  accept(): Promise<ScriptedPeer<NetEnd>>;
  close(): Promise<void>;
}

export async function listenNetPeer(): Promise<NetPeerServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vu-net-'));
  const path = join(dir, 'sock');
  const waiting: Array<(peer: ScriptedPeer<NetEnd>) => void> = [];
  const ready: ScriptedPeer<NetEnd>[] = [];
  const server = createServer((socket) => {
    const peer = new ScriptedPeer(new NetEnd(socket));
    const waiter = waiting.shift();
    if (waiter) waiter(peer);
    else ready.push(peer);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    server,
    accept() {
      const peer = ready.shift();
      if (peer) return Promise.resolve(peer);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

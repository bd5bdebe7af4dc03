// SPDX-License-Identifier: MIT
// The connection half of the vfio-user client (client.ts has the commands): a Transport (the
// native VfioUserSocket, or an in-memory pair in unit tests), pipelined requests matched to
// their replies by msg_id and command (ids may repeat [SPEC "Header"], so the oldest
// outstanding match wins), timeouts, and the commands the server sends the other way, which
// the subclass answers (serveCommand) or refuses with an errno.

import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { errnoName, ProtocolError } from '../errors.js';
import { createLogger } from '../log.js';
import { loadVfioUserNative } from '../native/binding.js';
import type { ClientOptions, ClientStats, Reply, RequestOptions } from './client-api.js';
import * as p from './protocol.js';

const log = createLogger('vfio-user-client');
const { ECONNRESET, EINVAL, EIO, ENOTCONN, ETIMEDOUT } = constants.errno;

/** The byte pipe the client talks over: one call per whole message, fds with their message. */
export interface Transport {
  send(bytes: Uint8Array, fds?: number[]): void;
  onMessage(cb: (msg: Uint8Array, fds: number[]) => void): void;
  onClose(cb: (errno: number) => void): void;
  close(): void;
  /** Closes an fd that arrived with a message and that nobody claims. */
  closeFd(fd: number): void;
}

/** A Transport over the native AF_UNIX socket (sendmsg/recvmsg with SCM_RIGHTS). */
export function connectNativeTransport(socketPath: string): Transport {
  const api = loadVfioUserNative();
  const sock = api.VfioUserSocket.connect(socketPath);
  return {
    send: (bytes, fds) => sock.send(bytes, fds ?? []),
    onMessage: (cb) => sock.onMessage(cb),
    onClose: (cb) => sock.onClose(cb),
    close: () => sock.close(),
    closeFd: (fd) => api.closeFd(fd),
  };
}

interface Pending {
  msgId: number;
  command: number;
  resolve(reply: Reply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  stack: Error;
}

function withStack(err: Error, stack: Error): Error {
  const frames = stack.stack?.split('\n').slice(1).join('\n');
  if (frames) err.stack = `${err.name}: ${err.message}\n${frames}`;
  return err;
}

/** A transport failure as the request's ProtocolError (VfioError 'sendmsg' carries the errno). */
function sendError(command: number, err: unknown): Error {
  if (err instanceof TypeError || err instanceof RangeError) return err;
  const errno = (err as { errno?: unknown }).errno;
  const message = `send failed: ${(err as Error).message}`;
  return new ProtocolError(
    p.opName(command),
    typeof errno === 'number' && errno > 0 ? errno : EIO,
    message,
  );
}

/**
 * Requests and replies over a Transport. Events: 'close' (errno, 0 for an orderly close),
 * 'protocol-error' (ProtocolError: something the server sent that the client could not use;
 * the client carries on).
 */
export class VfioUserConnection extends EventEmitter {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  #pending: Pending[] = [];
  #nextId = 0;
  #closed = false;
  protected readonly counters: ClientStats = {
    requests: 0,
    errorReplies: 0,
    timeouts: 0,
    unmatchedReplies: 0,
    dmaReads: 0,
    dmaWrites: 0,
    refusedCommands: 0,
  };

  constructor(transport: Transport, opts: ClientOptions = {}) {
    super();
    const timeoutMs = opts.timeoutMs ?? 5000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`timeoutMs must be a positive integer (received ${timeoutMs})`);
    }
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
    transport.onMessage((msg, fds) => this.#onMessage(msg, fds));
    transport.onClose((errno) => this.#shutDown(errno, 'the server closed the connection'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** How many requests await a reply. */
  get outstanding(): number {
    return this.#pending.length;
  }

  stats(): ClientStats {
    return { ...this.counters };
  }

  // ---- raw access ----

  /** Sends one command and resolves with its reply; rejects with the reply's errno. */
  request(
    command: number,
    payload: Uint8Array = new Uint8Array(0),
    fds: number[] = [],
    opts: RequestOptions = {},
  ): Promise<Reply> {
    const msgId = opts.msgId ?? this.allocateId();
    const bytes = p.encodeMessage(
      { msgId, command, flags: p.FLAG_TYPE_COMMAND, error: 0 },
      payload,
    );
    return this.#send(bytes, fds, msgId, command, opts.timeoutMs);
  }

  /** Sends bytes as they are, expecting a reply matching their header's msg_id and command. */
  requestRaw(bytes: Uint8Array, fds: number[] = [], opts: RequestOptions = {}): Promise<Reply> {
    const header = p.decodeHeader(bytes);
    return this.#send(bytes, fds, header.msgId, header.command, opts.timeoutMs);
  }

  /** Sends bytes as they are; no reply is awaited. */
  sendRaw(bytes: Uint8Array, fds: number[] = []): void {
    if (this.#closed) throw new ProtocolError('vfio-user:send', ENOTCONN, 'client is closed');
    this.#transport.send(bytes, fds);
  }

  /** Closes an fd a reply carried (convenience for Reply.fds and RegionInfo.fd). */
  closeFd(fd: number): void {
    this.#transport.closeFd(fd);
  }

  /** Idempotent: closes the transport and rejects every outstanding request. */
  close(): void {
    if (this.#closed) return;
    this.#shutDown(0, 'the client was closed');
    this.#transport.close();
  }

  // ---- for the subclass ----

  /**
   * Answers a command the server sent (a payload for the reply); throws a ProtocolError to
   * reply with its errno. Here: nothing goes server to client.
   */
  protected serveCommand(command: number, _payload: Uint8Array): Uint8Array {
    throw new ProtocolError(p.opName(command), EINVAL, 'not a server-to-client command');
  }

  /** The connection is gone (the server closed it, or close()): drop what belonged to it. */
  protected onShutDown(): void {}

  // ---- internals ----

  /** the next msg_id (16 bits, wrapping) */
  protected allocateId(): number {
    const id = this.#nextId;
    this.#nextId = (id + 1) & 0xffff;
    return id;
  }

  #send(
    bytes: Uint8Array,
    fds: number[],
    msgId: number,
    command: number,
    timeoutMs = this.#timeoutMs,
  ): Promise<Reply> {
    const stack = new Error();
    if (this.#closed) {
      return Promise.reject(
        withStack(new ProtocolError(p.opName(command), ENOTCONN, 'client is closed'), stack),
      );
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => this.#timeOut(entry, timeoutMs), timeoutMs);
      const entry: Pending = { msgId, command, resolve, reject, timer, stack };
      this.#pending.push(entry);
      this.counters.requests++;
      try {
        this.#transport.send(bytes, fds);
      } catch (err) {
        this.#settle(entry);
        reject(withStack(sendError(command, err), stack));
      }
    });
  }

  #settle(entry: Pending): void {
    clearTimeout(entry.timer);
    const at = this.#pending.indexOf(entry);
    if (at >= 0) this.#pending.splice(at, 1);
  }

  #timeOut(entry: Pending, timeoutMs: number): void {
    this.#settle(entry);
    this.counters.timeouts++;
    const err = new ProtocolError(
      p.opName(entry.command),
      ETIMEDOUT,
      `no reply in ${timeoutMs} ms`,
    );
    entry.reject(withStack(err, entry.stack));
  }

  #shutDown(errno: number, why: string): void {
    const first = !this.#closed;
    this.#closed = true;
    const pending = this.#pending;
    this.#pending = [];
    this.onShutDown();
    for (const entry of pending) {
      clearTimeout(entry.timer);
      const err = new ProtocolError(p.opName(entry.command), ECONNRESET, why);
      entry.reject(withStack(err, entry.stack));
    }
    if (first) this.emit('close', errno);
  }

  /** closes fds that arrived with a message and that nobody claims */
  protected dropFds(fds: readonly number[]): void {
    for (const fd of fds) {
      try {
        this.#transport.closeFd(fd);
      } catch (err) {
        log('closing fd %d failed: %s', fd, (err as Error).message);
      }
    }
  }

  #protocolError(err: unknown): void {
    const error =
      err instanceof ProtocolError ? err : new ProtocolError('vfio-user:recv', EINVAL, String(err));
    log('%s', error.message);
    if (this.listenerCount('protocol-error') > 0) this.emit('protocol-error', error);
  }

  #onMessage(bytes: Uint8Array, fds: number[]): void {
    let msg: { header: p.Header; payload: Uint8Array };
    try {
      msg = p.decodeMessage(bytes);
    } catch (err) {
      this.dropFds(fds);
      this.#protocolError(err);
      return;
    }
    const type = msg.header.flags & p.FLAG_TYPE_MASK;
    if (type === p.FLAG_TYPE_REPLY) this.#onReply(msg.header, msg.payload, fds);
    else if (type === p.FLAG_TYPE_COMMAND) this.#onCommand(msg.header, msg.payload, fds);
    else {
      this.dropFds(fds);
      this.#protocolError(
        new ProtocolError(p.opName(msg.header.command), EINVAL, `message type ${type}`),
      );
    }
  }

  #onReply(header: p.Header, payload: Uint8Array, fds: number[]): void {
    const entry = this.#pending.find(
      (e) => e.msgId === header.msgId && e.command === header.command,
    );
    if (!entry) {
      this.counters.unmatchedReplies++;
      this.dropFds(fds);
      this.#protocolError(
        new ProtocolError(
          p.opName(header.command),
          EINVAL,
          `reply to no request (id ${header.msgId})`,
        ),
      );
      return;
    }
    this.#settle(entry);
    if (header.flags & p.FLAG_ERROR) {
      this.counters.errorReplies++;
      this.dropFds(fds);
      // The error field "may be 0 even when Error is set" [SPEC "Header"]: report EIO then.
      const errno = header.error || EIO;
      const err = new ProtocolError(
        p.opName(header.command),
        errno,
        `server replied ${errnoName(errno)}`,
      );
      entry.reject(withStack(err, entry.stack));
      return;
    }
    entry.resolve({ header, payload, fds });
  }

  #onCommand(header: p.Header, payload: Uint8Array, fds: number[]): void {
    // DMA_READ/WRITE take no fds [SPEC "Commands"], and nothing else goes server to client.
    this.dropFds(fds);
    let reply: Uint8Array | undefined;
    let errno = 0;
    try {
      if (fds.length > 0) throw new ProtocolError(p.opName(header.command), EINVAL, 'fds sent');
      reply = this.serveCommand(header.command, payload);
    } catch (err) {
      this.counters.refusedCommands++;
      errno = err instanceof ProtocolError ? err.errno : EIO;
      log('refusing %s: %s', p.commandName(header.command), (err as Error).message);
    }
    if (header.flags & p.FLAG_NO_REPLY) return;
    const flags = p.FLAG_TYPE_REPLY | (errno ? p.FLAG_ERROR : 0);
    const bytes = p.encodeMessage(
      { msgId: header.msgId, command: header.command, flags, error: errno },
      errno ? undefined : reply,
    );
    try {
      this.#transport.send(bytes);
    } catch (err) {
      log('reply to %s failed: %s', p.commandName(header.command), (err as Error).message);
    }
  }
}

// SPDX-License-Identifier: MIT
// A vfio-user client: what QEMU's vfio-user-pci does, in TypeScript, for tests, `vfiobox demo`
// and scripts that drive a device without a VM. It speaks over a Transport (the native
// VfioUserSocket, or an in-memory pair in unit tests), pipelines requests, matches replies by
// msg_id and command (ids may repeat [SPEC "Header"], so the oldest outstanding match wins), and
// answers the server's DMA_READ/DMA_WRITE from memory it keeps for maps made without an fd
// [SPEC "VFIO_USER_DMA_MAP": no fd means the server uses DMA_READ/WRITE].

import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { errnoName, ProtocolError } from '../errors.js';
import { createLogger } from '../log.js';
import { loadVfioUserNative } from '../native/binding.js';
import type { NativeFdMapping } from '../native/types.js';
import { VFIO_REGION_INFO_FLAG_MMAP } from '../vfio/uapi.js';
import type {
  ClientOptions,
  ClientStats,
  DeviceInfo,
  DmaMapArgs,
  DmaUnmapArgs,
  IrqInfo,
  NegotiateResult,
  RegionInfo,
  Reply,
  RequestOptions,
  SetIrqsArgs,
} from './client-api.js';
import * as p from './protocol.js';

export type * from './client-api.js';
export { dma, type Memfd } from './guest-memory.js';

const log = createLogger('vfio-user-client');
const { EACCES, ECONNRESET, EFAULT, EINVAL, EIO, ENOTCONN, ETIMEDOUT } = constants.errno;

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

interface LocalMap {
  iova: bigint;
  sizeBytes: bigint;
  flags: number;
  memory?: Uint8Array;
}

/** What this client announces it can receive [SPEC "VFIO_USER_VERSION"]. */
const OUR_CAPABILITIES = {
  max_msg_fds: 8,
  max_data_xfer_size: p.DEFAULT_MAX_DATA_XFER_SIZE,
  max_dma_maps: p.DEFAULT_MAX_DMA_MAPS,
  pgsizes: p.DEFAULT_PGSIZES,
};

const MAX_REGION_INFO_ARGSZ = 64 * 1024;

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

function toSafe(command: number, name: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(p.opName(command), EINVAL, `${name} 0x${value.toString(16)} > 2^53`);
  }
  return Number(value);
}

/**
 * The client. Events: 'close' (errno, 0 for an orderly close), 'protocol-error' (ProtocolError:
 * something the server sent that the client could not use; the client carries on).
 */
export class VfioUserClient extends EventEmitter {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  #pending: Pending[] = [];
  #maps: LocalMap[] = [];
  #nextId = 0;
  #closed = false;
  #server: p.VersionCapabilities = p.parseCapabilities(undefined);
  readonly #stats: ClientStats = {
    requests: 0,
    errorReplies: 0,
    timeouts: 0,
    unmatchedReplies: 0,
    dmaReads: 0,
    dmaWrites: 0,
    refusedCommands: 0,
  };

  /** Connects to a server's socket (no VERSION yet: call negotiate()). */
  static async connect(socketPath: string, opts: ClientOptions = {}): Promise<VfioUserClient> {
    return new VfioUserClient(connectNativeTransport(socketPath), opts);
  }

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

  /** The server's capabilities from VERSION (defaults before negotiate()). */
  get serverCapabilities(): p.VersionCapabilities {
    return this.#server;
  }

  stats(): ClientStats {
    return { ...this.#stats };
  }

  // ---- raw access ----

  /** Sends one command and resolves with its reply; rejects with the reply's errno. */
  request(
    command: number,
    payload: Uint8Array = new Uint8Array(0),
    fds: number[] = [],
    opts: RequestOptions = {},
  ): Promise<Reply> {
    const msgId = opts.msgId ?? this.#allocateId();
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

  // ---- commands ----

  /** VERSION [SPEC "VFIO_USER_VERSION"]: proposes 0.0 and our capabilities (merged with `caps`). */
  async negotiate(
    caps: Record<string, unknown> = {},
    version: { major: number; minor: number } = { major: 0, minor: 0 },
  ): Promise<NegotiateResult> {
    const cmd = p.Command.VERSION;
    const json = { capabilities: { ...OUR_CAPABILITIES, ...caps } };
    const reply = await this.request(cmd, p.encodeVersion({ ...version, json }));
    this.#dropFds(reply.fds);
    const answer = p.decodeVersion(reply.payload);
    if (answer.major !== version.major || answer.minor > version.minor) {
      throw new ProtocolError(
        p.opName(cmd),
        EINVAL,
        `server answered ${answer.major}.${answer.minor} to ${version.major}.${version.minor}`,
      );
    }
    this.#server = p.parseCapabilities(answer.json);
    const result: NegotiateResult = {
      major: answer.major,
      minor: answer.minor,
      capabilities: this.#server,
    };
    if (answer.json) result.json = answer.json;
    return result;
  }

  async deviceInfo(): Promise<DeviceInfo> {
    const reply = await this.request(p.Command.DEVICE_GET_INFO, p.encodeDeviceInfo());
    this.#dropFds(reply.fds);
    const { flags, numRegions, numIrqs } = p.decodeDeviceInfo(reply.payload);
    return { flags, numRegions, numIrqs };
  }

  /** GET_REGION_INFO, asking first for the bare struct and again with the argsz the server named. */
  async regionInfo(index: number): Promise<RegionInfo> {
    const cmd = p.Command.DEVICE_GET_REGION_INFO;
    let argsz = p.REGION_INFO_SIZE;
    for (let attempt = 0; attempt < 3; attempt++) {
      const reply = await this.request(cmd, p.encodeRegionInfoRequest(index, argsz));
      let info: p.RegionInfoPayload;
      try {
        info = p.decodeRegionInfo(reply.payload);
        if (info.index !== index) {
          throw new ProtocolError(p.opName(cmd), EINVAL, `reply for region ${info.index}`);
        }
        if (info.argsz > MAX_REGION_INFO_ARGSZ) {
          throw new ProtocolError(p.opName(cmd), EINVAL, `argsz ${info.argsz} is unreasonable`);
        }
      } catch (err) {
        this.#dropFds(reply.fds);
        throw err;
      }
      if (info.argsz > reply.payload.byteLength && info.argsz > argsz) {
        this.#dropFds(reply.fds);
        argsz = info.argsz;
        continue;
      }
      const [fd, ...extra] = reply.fds;
      this.#dropFds(extra);
      return this.#regionInfoResult(info, fd);
    }
    throw new ProtocolError(p.opName(cmd), EINVAL, 'argsz kept growing');
  }

  /**
   * mmaps sparse area `area` of a region whose info came with an fd, as a VMM does with
   * FLAG_MMAP and the sparse mmap capability (a region without the capability is one area, all
   * of it). The mapping and the fd stay the caller's to close.
   */
  mapRegionArea(info: RegionInfo, area = 0): NativeFdMapping {
    const op = p.opName(p.Command.DEVICE_GET_REGION_INFO);
    if (info.fd === undefined || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0) {
      throw new ProtocolError(op, EINVAL, `region ${info.index} is not mmap-able`);
    }
    const areas = info.caps.sparseMmap ?? [{ offset: 0, size: info.sizeBytes }];
    const a = areas[area];
    if (!a) throw new RangeError(`area: expected 0..${areas.length - 1}, got ${area}`);
    return new (loadVfioUserNative().FdMapping)(info.fd, info.offset + a.offset, a.size);
  }

  async irqInfo(index: number): Promise<IrqInfo> {
    const reply = await this.request(p.Command.DEVICE_GET_IRQ_INFO, p.encodeIrqInfo({ index }));
    this.#dropFds(reply.fds);
    const info = p.decodeIrqInfo(reply.payload);
    return { index: info.index, flags: info.flags, count: info.count };
  }

  /** SET_IRQS; more eventfds than the server's max_msg_fds go as several messages [QEMU-SRC]. */
  async setIrqs(args: SetIrqsArgs): Promise<void> {
    const fds = args.fds ?? [];
    const chunk = Math.max(1, this.#server.maxMsgFds);
    if (fds.length <= chunk) {
      await this.#setIrqsOnce(args, fds);
      return;
    }
    const sends: Promise<void>[] = [];
    for (let i = 0; i < fds.length; i += chunk) {
      const part = fds.slice(i, i + chunk);
      sends.push(this.#setIrqsOnce({ ...args, start: args.start + i, count: part.length }, part));
    }
    await Promise.all(sends);
  }

  /** REGION_READ, split at the server's max_data_xfer_size and pipelined. */
  async regionRead(region: number, offset: number | bigint, count: number): Promise<Uint8Array> {
    checkCount(count);
    const out = new Uint8Array(count);
    const reads: Promise<void>[] = [];
    for (const [at, len] of this.#chunks(count)) {
      const start = BigInt(offset) + BigInt(at);
      reads.push(
        this.#readChunk(region, start, len).then((data) => {
          out.set(data, at);
        }),
      );
    }
    await Promise.all(reads);
    return out;
  }

  /** REGION_WRITE; `posted` sets No_reply and resolves once sent [QEMU-SRC posted writes]. */
  async regionWrite(
    region: number,
    offset: number | bigint,
    data: Uint8Array,
    opts: { posted?: boolean } = {},
  ): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [at, len] of this.#chunks(data.byteLength)) {
      const payload = p.encodeRegionAccess({
        offset: BigInt(offset) + BigInt(at),
        region,
        data: data.subarray(at, at + len),
      });
      writes.push(this.#writeChunk(payload, opts.posted === true));
    }
    await Promise.all(writes);
  }

  /** A 32-bit little-endian (PCI) register read. */
  async read32(region: number, offset: number | bigint): Promise<number> {
    const bytes = await this.regionRead(region, offset, 4);
    return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  }

  async write32(
    region: number,
    offset: number | bigint,
    value: number,
    opts: { posted?: boolean } = {},
  ): Promise<void> {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
    await this.regionWrite(region, offset, bytes, opts);
  }

  /** DMA_MAP with an fd (the server mmaps it) or without (we answer DMA_READ/WRITE). */
  async dmaMap(args: DmaMapArgs): Promise<void> {
    const sizeBytes = BigInt(args.sizeBytes);
    if (args.fd !== undefined && args.memory !== undefined) {
      throw new TypeError('dmaMap: pass fd or memory, not both');
    }
    if (args.memory && BigInt(args.memory.byteLength) < sizeBytes) {
      throw new RangeError(
        `dmaMap: memory is ${args.memory.byteLength} bytes, map is ${sizeBytes}`,
      );
    }
    const payload = p.encodeDmaMap({
      flags: args.flags,
      fdOffset: BigInt(args.fdOffset ?? 0),
      iova: args.iova,
      sizeBytes,
    });
    const reply = await this.request(
      p.Command.DMA_MAP,
      payload,
      args.fd === undefined ? [] : [args.fd],
    );
    this.#dropFds(reply.fds);
    const map: LocalMap = { iova: args.iova, sizeBytes, flags: args.flags };
    if (args.memory) map.memory = args.memory;
    this.#maps.push(map);
  }

  async dmaUnmap(args: DmaUnmapArgs): Promise<void> {
    const cmd = p.Command.DMA_UNMAP;
    const flags = args.flags ?? 0;
    const sizeBytes = BigInt(args.sizeBytes);
    const reply = await this.request(cmd, p.encodeDmaUnmap({ flags, iova: args.iova, sizeBytes }));
    this.#dropFds(reply.fds);
    // The reply echoes the request [SPEC]; an empty one is tolerated, a cut-short one is not.
    if (reply.payload.byteLength > 0) p.decodeDmaUnmap(reply.payload);
    this.#maps =
      flags & p.DMA_UNMAP_FLAG_ALL
        ? []
        : this.#maps.filter((m) => m.iova !== args.iova || m.sizeBytes !== sizeBytes);
  }

  /** DEVICE_RESET; it may take long [SPEC "VFIO_USER_DEVICE_RESET"], so `timeoutMs` can be raised. */
  async reset(opts: { timeoutMs?: number } = {}): Promise<void> {
    const ropts: RequestOptions = opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs };
    const reply = await this.request(p.Command.DEVICE_RESET, undefined, [], ropts);
    this.#dropFds(reply.fds);
  }

  // ---- internals ----

  #allocateId(): number {
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
      this.#stats.requests++;
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
    this.#stats.timeouts++;
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
    this.#maps = [];
    for (const entry of pending) {
      clearTimeout(entry.timer);
      const err = new ProtocolError(p.opName(entry.command), ECONNRESET, why);
      entry.reject(withStack(err, entry.stack));
    }
    if (first) this.emit('close', errno);
  }

  #dropFds(fds: readonly number[]): void {
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
      this.#dropFds(fds);
      this.#protocolError(err);
      return;
    }
    const type = msg.header.flags & p.FLAG_TYPE_MASK;
    if (type === p.FLAG_TYPE_REPLY) this.#onReply(msg.header, msg.payload, fds);
    else if (type === p.FLAG_TYPE_COMMAND) this.#onCommand(msg.header, msg.payload, fds);
    else {
      this.#dropFds(fds);
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
      this.#stats.unmatchedReplies++;
      this.#dropFds(fds);
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
      this.#stats.errorReplies++;
      this.#dropFds(fds);
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
    this.#dropFds(fds);
    let reply: Uint8Array | undefined;
    let errno = 0;
    try {
      if (fds.length > 0) throw new ProtocolError(p.opName(header.command), EINVAL, 'fds sent');
      reply = this.#serveDma(header.command, payload);
    } catch (err) {
      this.#stats.refusedCommands++;
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

  #serveDma(command: number, payload: Uint8Array): Uint8Array {
    const op = p.opName(command);
    if (command !== p.Command.DMA_READ && command !== p.Command.DMA_WRITE) {
      throw new ProtocolError(op, EINVAL, 'not a server-to-client command');
    }
    const write = command === p.Command.DMA_WRITE;
    const access = p.decodeDmaAccess(command, payload, write);
    if (access.count > BigInt(OUR_CAPABILITIES.max_data_xfer_size)) {
      throw new ProtocolError(op, EINVAL, `count ${access.count} > max_data_xfer_size`);
    }
    const end = access.iova + access.count;
    const map = this.#maps.find((m) => m.iova <= access.iova && end <= m.iova + m.sizeBytes);
    if (!map?.memory)
      throw new ProtocolError(op, EFAULT, `iova 0x${access.iova.toString(16)} unmapped`);
    const need = write ? p.DMA_FLAG_WRITE : p.DMA_FLAG_READ;
    if (!(map.flags & need)) throw new ProtocolError(op, EACCES, 'map does not allow it');
    const at = Number(access.iova - map.iova);
    const len = Number(access.count);
    if (write) {
      map.memory.set(access.data, at);
      this.#stats.dmaWrites++;
      return p.encodeDmaAccess({ iova: access.iova, count: access.count });
    }
    this.#stats.dmaReads++;
    return p.encodeDmaAccess({ iova: access.iova, data: map.memory.slice(at, at + len) });
  }

  #regionInfoResult(info: p.RegionInfoPayload, fd: number | undefined): RegionInfo {
    const cmd = p.Command.DEVICE_GET_REGION_INFO;
    const result: RegionInfo = {
      index: info.index,
      flags: info.flags,
      sizeBytes: toSafe(cmd, 'size', info.sizeBytes),
      offset: toSafe(cmd, 'offset', info.offset),
      caps: {},
    };
    try {
      const { sparseMmap, type, msixMappable } = info.caps;
      if (sparseMmap) {
        result.caps.sparseMmap = sparseMmap.map((a) => ({
          offset: toSafe(cmd, 'area offset', a.offset),
          size: toSafe(cmd, 'area size', a.size),
        }));
      }
      if (type) result.caps.type = type;
      if (msixMappable) result.caps.msixMappable = true;
    } catch (err) {
      if (fd !== undefined) this.#dropFds([fd]);
      throw err;
    }
    if (fd !== undefined) result.fd = fd;
    return result;
  }

  async #setIrqsOnce(args: SetIrqsArgs, fds: number[]): Promise<void> {
    const set: Parameters<typeof p.encodeIrqSet>[0] = {
      flags: args.flags,
      index: args.index,
      start: args.start,
      count: args.count,
    };
    if (args.data) set.data = args.data;
    const reply = await this.request(p.Command.DEVICE_SET_IRQS, p.encodeIrqSet(set), fds);
    this.#dropFds(reply.fds);
  }

  *#chunks(count: number): Generator<[number, number]> {
    const max = Math.max(1, this.#server.maxDataXferSize);
    for (let at = 0; at < count; at += max) yield [at, Math.min(max, count - at)];
  }

  async #readChunk(region: number, offset: bigint, count: number): Promise<Uint8Array> {
    const cmd = p.Command.REGION_READ;
    const reply = await this.request(cmd, p.encodeRegionAccess({ offset, region, count }));
    this.#dropFds(reply.fds);
    const got = p.decodeRegionAccess(cmd, reply.payload, true);
    if (got.offset !== offset || got.region !== region || got.count !== count) {
      throw new ProtocolError(p.opName(cmd), EINVAL, 'reply does not match the request');
    }
    return got.data;
  }

  async #writeChunk(payload: Uint8Array, posted: boolean): Promise<void> {
    const cmd = p.Command.REGION_WRITE;
    if (posted) {
      const flags = p.FLAG_TYPE_COMMAND | p.FLAG_NO_REPLY;
      this.sendRaw(
        p.encodeMessage({ msgId: this.#allocateId(), command: cmd, flags, error: 0 }, payload),
      );
      return;
    }
    const reply = await this.request(cmd, payload);
    this.#dropFds(reply.fds);
    p.decodeRegionAccess(cmd, reply.payload, false);
  }
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0 || count > 0xffffffff) {
    throw new RangeError(`count must be an integer in [0, 2^32) (received ${count})`);
  }
}

// SPDX-License-Identifier: MIT
// A vfio-user client: what QEMU's vfio-user-pci does, in TypeScript, for tests, `vfiobox demo`
// and scripts that drive a device without a VM. The connection (transport, pipelined requests,
// replies, timeouts) is client-connection.ts; here are the commands, and the answers to the
// server's DMA_READ/DMA_WRITE from memory this client keeps for maps made without an fd
// [SPEC "VFIO_USER_DMA_MAP": no fd means the server uses DMA_READ/WRITE].

import { constants } from 'node:os';
import { ProtocolError } from '../errors.js';
import { loadVfioUserNative } from '../native/binding.js';
import type { NativeFdMapping } from '../native/types.js';
import { VFIO_REGION_INFO_FLAG_MMAP } from '../vfio/uapi.js';
import type {
  ClientOptions,
  DeviceInfo,
  DmaMapArgs,
  DmaUnmapArgs,
  IrqInfo,
  NegotiateResult,
  RegionInfo,
  RequestOptions,
  SetIrqsArgs,
} from './client-api.js';
import { connectNativeTransport, VfioUserConnection } from './client-connection.js';
import * as p from './protocol.js';

export type * from './client-api.js';
export { connectNativeTransport, type Transport } from './client-connection.js';
export { dma, type Memfd } from './guest-memory.js';

const { EACCES, EFAULT, EINVAL } = constants.errno;

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

function toSafe(command: number, name: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(p.opName(command), EINVAL, `${name} 0x${value.toString(16)} > 2^53`);
  }
  return Number(value);
}

/**
 * The client. Events (VfioUserConnection): 'close' (errno, 0 for an orderly close),
 * 'protocol-error' (ProtocolError: something the server sent that the client could not use;
 * the client carries on).
 */
export class VfioUserClient extends VfioUserConnection {
  #maps: LocalMap[] = [];
  #server: p.VersionCapabilities = p.parseCapabilities(undefined);

  /** Connects to a server's socket (no VERSION yet: call negotiate()). */
  static async connect(socketPath: string, opts: ClientOptions = {}): Promise<VfioUserClient> {
    return new VfioUserClient(connectNativeTransport(socketPath), opts);
  }

  /** The server's capabilities from VERSION (defaults before negotiate()). */
  get serverCapabilities(): p.VersionCapabilities {
    return this.#server;
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
    this.dropFds(reply.fds);
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
    this.dropFds(reply.fds);
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
        this.dropFds(reply.fds);
        throw err;
      }
      if (info.argsz > reply.payload.byteLength && info.argsz > argsz) {
        this.dropFds(reply.fds);
        argsz = info.argsz;
        continue;
      }
      const [fd, ...extra] = reply.fds;
      this.dropFds(extra);
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
    this.dropFds(reply.fds);
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
    this.dropFds(reply.fds);
    const map: LocalMap = { iova: args.iova, sizeBytes, flags: args.flags };
    if (args.memory) map.memory = args.memory;
    this.#maps.push(map);
  }

  async dmaUnmap(args: DmaUnmapArgs): Promise<void> {
    const cmd = p.Command.DMA_UNMAP;
    const flags = args.flags ?? 0;
    const sizeBytes = BigInt(args.sizeBytes);
    const reply = await this.request(cmd, p.encodeDmaUnmap({ flags, iova: args.iova, sizeBytes }));
    this.dropFds(reply.fds);
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
    this.dropFds(reply.fds);
  }

  // ---- internals ----

  protected override onShutDown(): void {
    this.#maps = [];
  }

  /** DMA_READ / DMA_WRITE from the server, answered from a map made without an fd */
  protected override serveCommand(command: number, payload: Uint8Array): Uint8Array {
    const op = p.opName(command);
    if (command !== p.Command.DMA_READ && command !== p.Command.DMA_WRITE) {
      return super.serveCommand(command, payload); // refuses it
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
      this.counters.dmaWrites++;
      return p.encodeDmaAccess({ iova: access.iova, count: access.count });
    }
    this.counters.dmaReads++;
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
      if (fd !== undefined) this.dropFds([fd]);
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
    this.dropFds(reply.fds);
  }

  *#chunks(count: number): Generator<[number, number]> {
    const max = Math.max(1, this.#server.maxDataXferSize);
    for (let at = 0; at < count; at += max) yield [at, Math.min(max, count - at)];
  }

  async #readChunk(region: number, offset: bigint, count: number): Promise<Uint8Array> {
    const cmd = p.Command.REGION_READ;
    const reply = await this.request(cmd, p.encodeRegionAccess({ offset, region, count }));
    this.dropFds(reply.fds);
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
        p.encodeMessage({ msgId: this.allocateId(), command: cmd, flags, error: 0 }, payload),
      );
      return;
    }
    const reply = await this.request(cmd, payload);
    this.dropFds(reply.fds);
    p.decodeRegionAccess(cmd, reply.payload, false);
  }
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0 || count > 0xffffffff) {
    throw new RangeError(`count must be an integer in [0, 2^32) (received ${count})`);
  }
}

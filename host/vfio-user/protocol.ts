// SPDX-License-Identifier: MIT
// vfio-user wire format: command numbers, header flags, struct sizes and field offsets, and pure
// encoders/decoders over DataView for every message the TS client sends or receives.
//
// Sources: [SPEC] QEMU docs/interop/vfio-user.rst (1053bb6), [LVU] nutanix/libvfio-user
// include/vfio-user.h (efd091b), [VFIO-H] <linux/vfio.h> for the region/IRQ numbers vfio-user
// reuses. All integers are in host byte order [SPEC "Protocol Specification"]. Every u64 field is
// a bigint here (wire-exact, so hostile values survive a round trip); the client converts.
// Decoders check sizes and throw ProtocolError('vfio-user:<CMD>', EINVAL, ...).

import { constants, endianness } from 'node:os';
import { ProtocolError } from '../errors.js';
import {
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
} from '../vfio/uapi.js';

const LE = endianness() === 'LE';
const { EINVAL } = constants.errno;

/** [SPEC "Commands"], [LVU enum vfio_user_command]. 14 (an old DIRTY_PAGES) is unused. */
export const Command = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;
export type CommandName = keyof typeof Command;

const commandNames = new Map<number, string>(Object.entries(Command).map(([k, v]) => [v, k]));

/** `'DMA_MAP'` for 2; `'CMD_<n>'` for a number the spec does not define. */
export function commandName(command: number): string {
  return commandNames.get(command) ?? `CMD_${command}`;
}

/** The ProtocolError op for a command: `vfio-user:DMA_MAP`. */
export function opName(command: number): string {
  return `vfio-user:${commandName(command)}`;
}

// Header flags [SPEC "Header"]: bits 0-3 message type, bit 4 No_reply, bit 5 Error.
export const FLAG_TYPE_MASK = 0xf;
export const FLAG_TYPE_COMMAND = 0;
export const FLAG_TYPE_REPLY = 1;
export const FLAG_NO_REPLY = 1 << 4;
export const FLAG_ERROR = 1 << 5;

// Struct sizes [LVU include/vfio-user.h; VFIO-H]. Offsets are given in each codec below.
export const HEADER_SIZE = 16;
export const VERSION_SIZE = 4;
export const DMA_MAP_SIZE = 32;
export const DMA_UNMAP_SIZE = 24;
export const DEVICE_INFO_SIZE = 16;
export const REGION_INFO_SIZE = 32;
export const CAP_HEADER_SIZE = 8;
export const SPARSE_MMAP_HEAD_SIZE = 16;
export const SPARSE_AREA_SIZE = 16;
export const CAP_TYPE_SIZE = 16;
export const IRQ_INFO_SIZE = 16;
export const IRQ_SET_SIZE = 20;
export const REGION_ACCESS_SIZE = 16;
export const DMA_ACCESS_SIZE = 16;

// DMA_MAP flags [SPEC "VFIO_USER_DMA_MAP"]; the unmap ALL flag is [LVU] VFIO_DMA_UNMAP_FLAG_ALL.
export const DMA_FLAG_READ = 1 << 0;
export const DMA_FLAG_WRITE = 1 << 1;
export const DMA_UNMAP_FLAG_ALL = 1 << 1;

// [VFIO-H] struct vfio_irq_set flags (host/vfio/uapi.ts has the ACTION_* ones, not DATA_*).
export const IRQ_SET_DATA_NONE = 1 << 0;
export const IRQ_SET_DATA_BOOL = 1 << 1;
export const IRQ_SET_DATA_EVENTFD = 1 << 2;
export const IRQ_SET_ACTION_MASK = 1 << 3;
export const IRQ_SET_ACTION_UNMASK = 1 << 4;
export const IRQ_SET_ACTION_TRIGGER = 1 << 5;

// Defaults for keys the peer's VERSION JSON omits [SPEC "VFIO_USER_VERSION"].
export const DEFAULT_MAX_MSG_FDS = 1;
export const DEFAULT_MAX_DATA_XFER_SIZE = 1048576;
export const DEFAULT_MAX_DMA_MAPS = 65535;
export const DEFAULT_PGSIZES = 4096;

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fail(command: number, message: string): never {
  throw new ProtocolError(opName(command), EINVAL, message);
}

/** Throws unless `payload` is at least (or, with `exact`, exactly) `size` bytes. */
export function checkSize(command: number, payload: Uint8Array, size: number, exact = false): void {
  const bad = exact ? payload.byteLength !== size : payload.byteLength < size;
  if (bad) {
    fail(
      command,
      `payload is ${payload.byteLength} bytes, need ${exact ? '' : 'at least '}${size}`,
    );
  }
}

function allocate(size: number): [Uint8Array, DataView] {
  const bytes = new Uint8Array(size);
  return [bytes, viewOf(bytes)];
}

// ---- header [SPEC "Header"; LVU struct vfio_user_header] ----
// off 0 msg_id u16, 2 command u16, 4 msg_size u32 (header included), 8 flags u32, 12 error u32.

export interface Header {
  msgId: number;
  command: number;
  msgSize: number;
  flags: number;
  error: number;
}

export function encodeHeader(header: Header): Uint8Array {
  const [bytes, view] = allocate(HEADER_SIZE);
  view.setUint16(0, header.msgId, LE);
  view.setUint16(2, header.command, LE);
  view.setUint32(4, header.msgSize, LE);
  view.setUint32(8, header.flags, LE);
  view.setUint32(12, header.error, LE);
  return bytes;
}

/** The header of a message; throws for fewer than 16 bytes. */
export function decodeHeader(bytes: Uint8Array): Header {
  if (bytes.byteLength < HEADER_SIZE) {
    throw new ProtocolError('vfio-user:HEADER', EINVAL, `${bytes.byteLength}-byte message`);
  }
  const view = viewOf(bytes);
  return {
    msgId: view.getUint16(0, LE),
    command: view.getUint16(2, LE),
    msgSize: view.getUint32(4, LE),
    flags: view.getUint32(8, LE),
    error: view.getUint32(12, LE),
  };
}

/** Header plus payload, with msg_size set to the total. */
export function encodeMessage(header: Omit<Header, 'msgSize'>, payload?: Uint8Array): Uint8Array {
  const body = payload ?? new Uint8Array(0);
  const bytes = new Uint8Array(HEADER_SIZE + body.byteLength);
  bytes.set(encodeHeader({ ...header, msgSize: bytes.byteLength }), 0);
  bytes.set(body, HEADER_SIZE);
  return bytes;
}

/** Splits a whole message; throws unless msg_size equals its length. */
export function decodeMessage(bytes: Uint8Array): { header: Header; payload: Uint8Array } {
  const header = decodeHeader(bytes);
  if (header.msgSize !== bytes.byteLength) {
    fail(
      header.command,
      `msg_size ${header.msgSize} but the message has ${bytes.byteLength} bytes`,
    );
  }
  return { header, payload: bytes.subarray(HEADER_SIZE) };
}

// ---- VERSION [SPEC "VFIO_USER_VERSION"]: major u16, minor u16, optional NUL-terminated JSON ----

export interface VersionPayload {
  major: number;
  minor: number;
  /** the parsed JSON object (`{capabilities: {...}}`), if any */
  json?: Record<string, unknown>;
}

export function encodeVersion(version: VersionPayload): Uint8Array {
  const text = version.json === undefined ? '' : JSON.stringify(version.json);
  const json = new TextEncoder().encode(text);
  const [bytes, view] = allocate(VERSION_SIZE + (json.byteLength ? json.byteLength + 1 : 0));
  view.setUint16(0, version.major, LE);
  view.setUint16(2, version.minor, LE);
  bytes.set(json, VERSION_SIZE); // the trailing NUL is the zero byte allocate() left
  return bytes;
}

export function decodeVersion(payload: Uint8Array): VersionPayload {
  const cmd = Command.VERSION;
  checkSize(cmd, payload, VERSION_SIZE);
  const view = viewOf(payload);
  const version: VersionPayload = { major: view.getUint16(0, LE), minor: view.getUint16(2, LE) };
  if (payload.byteLength === VERSION_SIZE) return version;
  // [LVU lib/tran.c] refuses JSON that is not NUL-terminated; a NUL inside cuts it short.
  const text = payload.subarray(VERSION_SIZE);
  if (text[text.byteLength - 1] !== 0) fail(cmd, 'JSON is not NUL-terminated');
  if (text.indexOf(0) !== text.byteLength - 1) fail(cmd, 'NUL inside the JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(text.subarray(0, -1)));
  } catch (err) {
    fail(cmd, `bad JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail(cmd, 'JSON is not an object');
  }
  version.json = parsed as Record<string, unknown>;
  return version;
}

/** The capabilities one side announced, defaults filled in [SPEC "VFIO_USER_VERSION"]. */
export interface VersionCapabilities {
  maxMsgFds: number;
  maxDataXferSize: number;
  maxDmaMaps: number;
  pgsizes: number;
  writeMultiple: boolean;
  twinSocket?: { supported: boolean; fdIndex?: number };
  migration?: { pgsize?: number; maxBitmapSize?: number };
}

function capNumber(caps: Record<string, unknown>, key: string, fallback: number): number {
  const value = caps[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(Command.VERSION, `capability ${key} is not a non-negative integer`);
  }
  return value;
}

function objectField(value: unknown, key: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(Command.VERSION, `${key} is not an object`);
  }
  return value as Record<string, unknown>;
}

export function parseCapabilities(json: Record<string, unknown> | undefined): VersionCapabilities {
  const caps = objectField(json?.capabilities, 'capabilities') ?? {};
  const result: VersionCapabilities = {
    maxMsgFds: capNumber(caps, 'max_msg_fds', DEFAULT_MAX_MSG_FDS),
    maxDataXferSize: capNumber(caps, 'max_data_xfer_size', DEFAULT_MAX_DATA_XFER_SIZE),
    maxDmaMaps: capNumber(caps, 'max_dma_maps', DEFAULT_MAX_DMA_MAPS),
    pgsizes: capNumber(caps, 'pgsizes', DEFAULT_PGSIZES),
    writeMultiple: caps.write_multiple === true,
  };
  const twin = objectField(caps.twin_socket, 'twin_socket');
  if (twin) {
    result.twinSocket = { supported: twin.supported === true };
    if (twin.fd_index !== undefined) result.twinSocket.fdIndex = capNumber(twin, 'fd_index', 0);
  }
  const migration = objectField(caps.migration, 'migration');
  if (migration) {
    result.migration = {};
    if (migration.pgsize !== undefined) result.migration.pgsize = capNumber(migration, 'pgsize', 0);
    if (migration.max_bitmap_size !== undefined) {
      result.migration.maxBitmapSize = capNumber(migration, 'max_bitmap_size', 0);
    }
  }
  return result;
}

// ---- DMA_MAP [SPEC "VFIO_USER_DMA_MAP"; LVU struct vfio_user_dma_map] ----
// off 0 argsz u32 (the struct's size: the reply has no payload), 4 flags u32, 8 offset u64
// (file offset in the fd), 16 addr u64 (IOVA), 24 size u64.

export interface DmaMapPayload {
  argsz: number;
  flags: number;
  fdOffset: bigint;
  iova: bigint;
  sizeBytes: bigint;
}

export function encodeDmaMap(map: Omit<DmaMapPayload, 'argsz'> & { argsz?: number }): Uint8Array {
  const [bytes, view] = allocate(DMA_MAP_SIZE);
  view.setUint32(0, map.argsz ?? DMA_MAP_SIZE, LE);
  view.setUint32(4, map.flags, LE);
  view.setBigUint64(8, map.fdOffset, LE);
  view.setBigUint64(16, map.iova, LE);
  view.setBigUint64(24, map.sizeBytes, LE);
  return bytes;
}

export function decodeDmaMap(payload: Uint8Array): DmaMapPayload {
  checkSize(Command.DMA_MAP, payload, DMA_MAP_SIZE, true);
  const view = viewOf(payload);
  return {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    fdOffset: view.getBigUint64(8, LE),
    iova: view.getBigUint64(16, LE),
    sizeBytes: view.getBigUint64(24, LE),
  };
}

// ---- DMA_UNMAP [SPEC "VFIO_USER_DMA_UNMAP"]: argsz, flags, addr u64 @8, size u64 @16 ----
// The reply echoes the request struct [SPEC].

export interface DmaUnmapPayload {
  argsz: number;
  flags: number;
  iova: bigint;
  sizeBytes: bigint;
}

export function encodeDmaUnmap(
  unmap: Omit<DmaUnmapPayload, 'argsz'> & { argsz?: number },
): Uint8Array {
  const [bytes, view] = allocate(DMA_UNMAP_SIZE);
  view.setUint32(0, unmap.argsz ?? DMA_UNMAP_SIZE, LE);
  view.setUint32(4, unmap.flags, LE);
  view.setBigUint64(8, unmap.iova, LE);
  view.setBigUint64(16, unmap.sizeBytes, LE);
  return bytes;
}

export function decodeDmaUnmap(payload: Uint8Array): DmaUnmapPayload {
  checkSize(Command.DMA_UNMAP, payload, DMA_UNMAP_SIZE);
  const view = viewOf(payload);
  return {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    iova: view.getBigUint64(8, LE),
    sizeBytes: view.getBigUint64(16, LE),
  };
}

// ---- DEVICE_GET_INFO [SPEC; VFIO-H struct vfio_device_info] ----
// off 0 argsz, 4 flags (RESET 1, PCI 2), 8 num_regions, 12 num_irqs; the request is all zeros
// but argsz.

export interface DeviceInfoPayload {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export function encodeDeviceInfo(info: Partial<DeviceInfoPayload> = {}): Uint8Array {
  const [bytes, view] = allocate(DEVICE_INFO_SIZE);
  view.setUint32(0, info.argsz ?? DEVICE_INFO_SIZE, LE);
  view.setUint32(4, info.flags ?? 0, LE);
  view.setUint32(8, info.numRegions ?? 0, LE);
  view.setUint32(12, info.numIrqs ?? 0, LE);
  return bytes;
}

export function decodeDeviceInfo(payload: Uint8Array): DeviceInfoPayload {
  checkSize(Command.DEVICE_GET_INFO, payload, DEVICE_INFO_SIZE);
  const view = viewOf(payload);
  return {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    numRegions: view.getUint32(8, LE),
    numIrqs: view.getUint32(12, LE),
  };
}

// ---- DEVICE_GET_REGION_INFO [SPEC "VFIO_USER_DEVICE_GET_REGION_INFO"; VFIO-H] ----
// struct vfio_region_info: 0 argsz, 4 flags, 8 index, 12 cap_offset, 16 size u64, 24 offset u64;
// then the capability chain. Each cap: id u16 @0, version u16 @2, next u32 @4, where next and
// cap_offset count from the start of the region-info struct, and next 0 ends the chain.
// SPARSE_MMAP (id 1): nr_areas u32 @8, reserved @12, then nr_areas x {offset u64, size u64}.
// TYPE (id 2): type u32 @8, subtype u32 @12. MSIX_MAPPABLE (id 3): the header alone.

export interface RegionCaps {
  sparseMmap?: Array<{ offset: bigint; size: bigint }>;
  type?: { type: number; subtype: number };
  msixMappable?: boolean;
  /** ids of capabilities this codec does not know (skipped) */
  unknown?: number[];
}

export interface RegionInfoPayload {
  argsz: number;
  flags: number;
  index: number;
  capOffset: number;
  sizeBytes: bigint;
  offset: bigint;
  caps: RegionCaps;
}

export function encodeRegionInfoRequest(index: number, argsz = REGION_INFO_SIZE): Uint8Array {
  const [bytes, view] = allocate(REGION_INFO_SIZE);
  view.setUint32(0, argsz, LE);
  view.setUint32(8, index, LE);
  return bytes;
}

function capBytes(caps: RegionCaps): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (caps.sparseMmap) {
    const [b, v] = allocate(SPARSE_MMAP_HEAD_SIZE + SPARSE_AREA_SIZE * caps.sparseMmap.length);
    v.setUint16(0, VFIO_REGION_INFO_CAP_SPARSE_MMAP, LE);
    v.setUint16(2, 1, LE);
    v.setUint32(8, caps.sparseMmap.length, LE);
    caps.sparseMmap.forEach((area, i) => {
      v.setBigUint64(SPARSE_MMAP_HEAD_SIZE + i * SPARSE_AREA_SIZE, area.offset, LE);
      v.setBigUint64(SPARSE_MMAP_HEAD_SIZE + i * SPARSE_AREA_SIZE + 8, area.size, LE);
    });
    out.push(b);
  }
  if (caps.type) {
    const [b, v] = allocate(CAP_TYPE_SIZE);
    v.setUint16(0, VFIO_REGION_INFO_CAP_TYPE, LE);
    v.setUint16(2, 1, LE);
    v.setUint32(8, caps.type.type, LE);
    v.setUint32(12, caps.type.subtype, LE);
    out.push(b);
  }
  if (caps.msixMappable) {
    const [b, v] = allocate(CAP_HEADER_SIZE);
    v.setUint16(0, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, LE);
    v.setUint16(2, 1, LE);
    out.push(b);
  }
  return out;
}

/**
 * A region-info reply (what a server sends). With caps, CAPS is set, the chain is appended and
 * argsz is the full size; `maxArgsz` smaller than that cuts the payload to the bare struct, as
 * [SPEC "Message sizes"] describes.
 */
export function encodeRegionInfo(
  info: Omit<RegionInfoPayload, 'argsz' | 'capOffset' | 'caps'> & { caps?: RegionCaps },
  maxArgsz = Number.MAX_SAFE_INTEGER,
): Uint8Array {
  const chain = capBytes(info.caps ?? {});
  const total = chain.reduce((n, c) => n + c.byteLength, REGION_INFO_SIZE);
  const fits = total <= maxArgsz;
  const [bytes, view] = allocate(fits ? total : REGION_INFO_SIZE);
  view.setUint32(0, total, LE);
  view.setUint32(4, info.flags | (chain.length ? VFIO_REGION_INFO_FLAG_CAPS : 0), LE);
  view.setUint32(8, info.index, LE);
  view.setUint32(12, chain.length ? REGION_INFO_SIZE : 0, LE);
  view.setBigUint64(16, info.sizeBytes, LE);
  view.setBigUint64(24, info.offset, LE);
  if (!fits) return bytes;
  let at = REGION_INFO_SIZE;
  chain.forEach((cap, i) => {
    const next = i + 1 < chain.length ? at + cap.byteLength : 0;
    new DataView(cap.buffer).setUint32(4, next, LE);
    bytes.set(cap, at);
    at += cap.byteLength;
  });
  return bytes;
}

function decodeCap(view: DataView, at: number, caps: RegionCaps): number {
  const cmd = Command.DEVICE_GET_REGION_INFO;
  if (at + CAP_HEADER_SIZE > view.byteLength) fail(cmd, `capability at ${at} is cut short`);
  const id = view.getUint16(at, LE);
  const next = view.getUint32(at + 4, LE);
  if (id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
    if (at + SPARSE_MMAP_HEAD_SIZE > view.byteLength) fail(cmd, 'sparse mmap cap cut short');
    const count = view.getUint32(at + 8, LE);
    if (at + SPARSE_MMAP_HEAD_SIZE + count * SPARSE_AREA_SIZE > view.byteLength) {
      fail(cmd, `sparse mmap cap with ${count} areas does not fit`);
    }
    caps.sparseMmap = [];
    for (let i = 0; i < count; i++) {
      const area = at + SPARSE_MMAP_HEAD_SIZE + i * SPARSE_AREA_SIZE;
      caps.sparseMmap.push({
        offset: view.getBigUint64(area, LE),
        size: view.getBigUint64(area + 8, LE),
      });
    }
  } else if (id === VFIO_REGION_INFO_CAP_TYPE) {
    if (at + CAP_TYPE_SIZE > view.byteLength) fail(cmd, 'type cap cut short');
    caps.type = { type: view.getUint32(at + 8, LE), subtype: view.getUint32(at + 12, LE) };
  } else if (id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
    caps.msixMappable = true;
  } else {
    caps.unknown = [...(caps.unknown ?? []), id];
  }
  return next;
}

/** A region-info reply. The chain is parsed only if CAPS is set and the payload holds it. */
export function decodeRegionInfo(payload: Uint8Array): RegionInfoPayload {
  const cmd = Command.DEVICE_GET_REGION_INFO;
  checkSize(cmd, payload, REGION_INFO_SIZE);
  const view = viewOf(payload);
  const info: RegionInfoPayload = {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    index: view.getUint32(8, LE),
    capOffset: view.getUint32(12, LE),
    sizeBytes: view.getBigUint64(16, LE),
    offset: view.getBigUint64(24, LE),
    caps: {},
  };
  const complete = info.argsz <= payload.byteLength;
  if (!(info.flags & VFIO_REGION_INFO_FLAG_CAPS) || info.capOffset === 0 || !complete) return info;
  // Each `next` must move forward past the struct: that bounds the walk and refuses loops.
  let at = info.capOffset;
  let previous = REGION_INFO_SIZE - 1;
  while (at !== 0) {
    if (at <= previous) fail(cmd, `capability offset ${at} does not move forward`);
    previous = at;
    at = decodeCap(view, at, info.caps);
  }
  return info;
}

// ---- DEVICE_GET_IRQ_INFO [SPEC; VFIO-H struct vfio_irq_info]: argsz, flags, index, count ----

export interface IrqInfoPayload {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

export function encodeIrqInfo(info: Partial<IrqInfoPayload> & { index: number }): Uint8Array {
  const [bytes, view] = allocate(IRQ_INFO_SIZE);
  view.setUint32(0, info.argsz ?? IRQ_INFO_SIZE, LE);
  view.setUint32(4, info.flags ?? 0, LE);
  view.setUint32(8, info.index, LE);
  view.setUint32(12, info.count ?? 0, LE);
  return bytes;
}

export function decodeIrqInfo(payload: Uint8Array): IrqInfoPayload {
  checkSize(Command.DEVICE_GET_IRQ_INFO, payload, IRQ_INFO_SIZE);
  const view = viewOf(payload);
  return {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    index: view.getUint32(8, LE),
    count: view.getUint32(12, LE),
  };
}

// ---- DEVICE_SET_IRQS [SPEC; VFIO-H struct vfio_irq_set] ----
// off 0 argsz (the request's size: no reply payload), 4 flags, 8 index, 12 start, 16 count,
// then data[]: count bytes for DATA_BOOL; eventfds travel as SCM_RIGHTS, not in data.

export interface IrqSetPayload {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  data: Uint8Array;
}

export function encodeIrqSet(
  set: Omit<IrqSetPayload, 'argsz' | 'data'> & { argsz?: number; data?: Uint8Array },
): Uint8Array {
  const data = set.data ?? new Uint8Array(0);
  const [bytes, view] = allocate(IRQ_SET_SIZE + data.byteLength);
  view.setUint32(0, set.argsz ?? bytes.byteLength, LE);
  view.setUint32(4, set.flags, LE);
  view.setUint32(8, set.index, LE);
  view.setUint32(12, set.start, LE);
  view.setUint32(16, set.count, LE);
  bytes.set(data, IRQ_SET_SIZE);
  return bytes;
}

export function decodeIrqSet(payload: Uint8Array): IrqSetPayload {
  checkSize(Command.DEVICE_SET_IRQS, payload, IRQ_SET_SIZE);
  const view = viewOf(payload);
  return {
    argsz: view.getUint32(0, LE),
    flags: view.getUint32(4, LE),
    index: view.getUint32(8, LE),
    start: view.getUint32(12, LE),
    count: view.getUint32(16, LE),
    data: payload.slice(IRQ_SET_SIZE),
  };
}

// ---- REGION_READ / REGION_WRITE [SPEC "Read and Write Operations"] ----
// off 0 offset u64, 8 region u32, 12 count u32, then data: the READ reply and the WRITE request
// carry count bytes; the READ request and the WRITE reply carry none.

export interface RegionAccessPayload {
  offset: bigint;
  region: number;
  count: number;
  data: Uint8Array;
}

export function encodeRegionAccess(
  access: Omit<RegionAccessPayload, 'data' | 'count'> & { count?: number; data?: Uint8Array },
): Uint8Array {
  const data = access.data ?? new Uint8Array(0);
  const [bytes, view] = allocate(REGION_ACCESS_SIZE + data.byteLength);
  view.setBigUint64(0, access.offset, LE);
  view.setUint32(8, access.region, LE);
  view.setUint32(12, access.count ?? data.byteLength, LE);
  bytes.set(data, REGION_ACCESS_SIZE);
  return bytes;
}

/** `withData`: the payload must hold exactly `count` data bytes after the head, else none. */
export function decodeRegionAccess(
  command: number,
  payload: Uint8Array,
  withData: boolean,
): RegionAccessPayload {
  checkSize(command, payload, REGION_ACCESS_SIZE);
  const view = viewOf(payload);
  const count = view.getUint32(12, LE);
  checkSize(command, payload, REGION_ACCESS_SIZE + (withData ? count : 0), true);
  return {
    offset: view.getBigUint64(0, LE),
    region: view.getUint32(8, LE),
    count,
    data: payload.subarray(REGION_ACCESS_SIZE),
  };
}

// ---- DMA_READ / DMA_WRITE, server to client [SPEC "VFIO_USER_DMA_READ"] ----
// off 0 addr u64 (IOVA), 8 count u64, then data: the READ reply and the WRITE request carry it.
// The spec's DMA_WRITE reply table gives count 4 bytes; [LVU struct vfio_user_dma_region_access]
// uses the same 16-byte head both ways, which is what we send.

export interface DmaAccessPayload {
  iova: bigint;
  count: bigint;
  data: Uint8Array;
}

export function encodeDmaAccess(
  access: Omit<DmaAccessPayload, 'data' | 'count'> & { count?: bigint; data?: Uint8Array },
): Uint8Array {
  const data = access.data ?? new Uint8Array(0);
  const [bytes, view] = allocate(DMA_ACCESS_SIZE + data.byteLength);
  view.setBigUint64(0, access.iova, LE);
  view.setBigUint64(8, access.count ?? BigInt(data.byteLength), LE);
  bytes.set(data, DMA_ACCESS_SIZE);
  return bytes;
}

export function decodeDmaAccess(
  command: number,
  payload: Uint8Array,
  withData: boolean,
): DmaAccessPayload {
  checkSize(command, payload, DMA_ACCESS_SIZE);
  const view = viewOf(payload);
  const count = view.getBigUint64(8, LE);
  const expected = BigInt(DMA_ACCESS_SIZE) + (withData ? count : 0n);
  if (BigInt(payload.byteLength) !== expected) {
    fail(command, `payload is ${payload.byteLength} bytes, need ${expected}`);
  }
  return {
    iova: view.getBigUint64(0, LE),
    count,
    data: payload.subarray(DMA_ACCESS_SIZE),
  };
}

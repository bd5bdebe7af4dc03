// SPDX-License-Identifier: MIT
// The device commands: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (with its capability chain),
// DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS, REGION_READ and REGION_WRITE.

import {
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
} from '../../vfio/uapi.js';
import { Command } from './commands.js';
import { allocate, fail, LE, viewOf } from './util.js';
import {
  CAP_HEADER_SIZE,
  CAP_TYPE_SIZE,
  checkSize,
  DEVICE_INFO_SIZE,
  IRQ_INFO_SIZE,
  IRQ_SET_SIZE,
  REGION_ACCESS_SIZE,
  REGION_INFO_SIZE,
  SPARSE_AREA_SIZE,
  SPARSE_MMAP_HEAD_SIZE,
} from './wire.js';

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

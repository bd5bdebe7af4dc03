// SPDX-License-Identifier: MIT
// DMA_MAP and DMA_UNMAP (client to server), DMA_READ and DMA_WRITE (server to client).

import { Command } from './commands.js';
import { allocate, fail, LE, viewOf } from './util.js';
import { checkSize, DMA_ACCESS_SIZE, DMA_MAP_SIZE, DMA_UNMAP_SIZE } from './wire.js';

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

// SPDX-License-Identifier: MIT
// vfio-user framing: header flags, struct sizes, limits, size checks and the header codec.

import { constants } from 'node:os';
import { ProtocolError } from '../../errors.js';
import { allocate, fail, LE, viewOf } from './util.js';

const { EINVAL } = constants.errno;

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

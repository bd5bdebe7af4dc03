// SPDX-License-Identifier: MIT
// VERSION: the negotiation payload and its JSON capabilities.

import { Command } from './commands.js';
import { allocate, fail, LE, viewOf } from './util.js';
import {
  checkSize,
  DEFAULT_MAX_DATA_XFER_SIZE,
  DEFAULT_MAX_DMA_MAPS,
  DEFAULT_MAX_MSG_FDS,
  DEFAULT_PGSIZES,
  VERSION_SIZE,
} from './wire.js';

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

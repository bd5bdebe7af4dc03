// SPDX-License-Identifier: MIT
// What VfioUserClient (client.ts) takes and returns: its options, replies and the results of
// each request, in one place a script author can read without the client's machinery.

import type * as p from './protocol.js';

export interface ClientOptions {
  /** per-request timeout; default 5000 ms, as QEMU's vfio-user-pci x-msg-timeout [QEMU-SRC] */
  timeoutMs?: number;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** force this msg_id (tests of the id-reuse rule); default: the next id */
  msgId?: number;
}

/** A reply as it came: the header, the payload after it, and any fds (the caller owns them). */
export interface Reply {
  header: p.Header;
  payload: Uint8Array;
  fds: number[];
}

export interface NegotiateResult {
  major: number;
  minor: number;
  capabilities: p.VersionCapabilities;
  json?: Record<string, unknown>;
}

export interface DeviceInfo {
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export interface RegionInfo {
  index: number;
  flags: number;
  sizeBytes: number;
  /** offset at which to mmap `fd` */
  offset: number;
  caps: {
    sparseMmap?: Array<{ offset: number; size: number }>;
    type?: { type: number; subtype: number };
    msixMappable?: boolean;
  };
  /** the region's fd when it (or part of it) can be mmap'ed; the caller closes it */
  fd?: number;
}

export interface IrqInfo {
  index: number;
  flags: number;
  count: number;
}

export interface SetIrqsArgs {
  index: number;
  flags: number;
  start: number;
  count: number;
  /** one eventfd per sub-index with DATA_EVENTFD (split by the server's max_msg_fds) */
  fds?: number[];
  /** count bytes with DATA_BOOL */
  data?: Uint8Array;
}

export interface DmaMapArgs {
  iova: bigint;
  sizeBytes: number | bigint;
  /** DMA_FLAG_READ | DMA_FLAG_WRITE */
  flags: number;
  /** the server may mmap [fdOffset, fdOffset + sizeBytes) of it */
  fd?: number;
  fdOffset?: number | bigint;
  /** no fd: the client answers the server's DMA_READ/WRITE from this memory */
  memory?: Uint8Array;
}

export interface DmaUnmapArgs {
  iova: bigint;
  sizeBytes: number | bigint;
  flags?: number;
}

export interface ClientStats {
  requests: number;
  errorReplies: number;
  timeouts: number;
  unmatchedReplies: number;
  dmaReads: number;
  dmaWrites: number;
  /** server-to-client commands refused (unknown, bad, or outside every local map) */
  refusedCommands: number;
}

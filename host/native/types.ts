// SPDX-License-Identifier: MIT
// The TypeScript face of the native addon (native/src/js/*.cc). Hand-written, like node-pty's
// native.d.ts: every export of vfio_core.node and vfio_core_fake.node is declared here, and
// test/native/exports.test.ts compares the runtime export list with NATIVE_KEYS below.
//
// Conventions (docs/architecture.md):
//  - addresses (iova, physical addresses) are bigint; sizes and offsets are numbers <= 2^53;
//  - every failure is thrown as the VfioError class handed in through setErrorClass();
//  - fast calls are synchronous and allocate nothing on success (region read/write, eventfd write).

import type { NativeWasmtime } from '../plugins/engines/wasmtime-native.js';

/** Bumped whenever this interface changes; binding.ts refuses an addon with another value. */
export const NATIVE_ABI_VERSION = 6;

export type IommuKind = 'legacy' | 'iommufd' | 'noiommu';

/** Arguments the native side passes to the error constructor (see host/errors.ts). */
export interface NativeErrorInit {
  op: string;
  errno: number;
  code: string;
  message: string;
  detail?: Record<string, unknown>;
}
export type ErrorFactory = (init: NativeErrorInit) => Error;

export interface NativeIovaRange {
  start: bigint;
  /** inclusive, as in the kernel's struct iommu_iova_range / vfio_iova_range */
  last: bigint;
}

export interface NativeDmaEntry {
  iova: bigint;
  sizeBytes: number;
  /** VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE */
  flags: number;
  /** offset of the mapping's first byte inside its DmaBuffer */
  bufferOffset: number;
}

export interface NativeDeviceInfo {
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export type NativeRegionCap =
  | { kind: 'sparse-mmap'; areas: Array<{ offset: number; sizeBytes: number }> }
  | { kind: 'type'; type: number; subtype: number }
  | { kind: 'msix-mappable' }
  | { kind: 'unknown'; id: number; version: number };

export interface NativeRegionInfo {
  index: number;
  flags: number;
  sizeBytes: number;
  /** offset of the region inside the device fd (pread/pwrite/mmap offset) */
  fdOffset: bigint;
  caps: NativeRegionCap[];
}

export interface NativeIrqInfo {
  index: number;
  flags: number;
  count: number;
}

/** An anonymous, page-aligned host memory buffer for DMA (mmap'd and owned by the addon). */
export interface NativeDmaBuffer {
  readonly sizeBytes: number;
  /** copies out; RangeError outside the buffer */
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Uint8Array): void;
  fill(offset: number, length: number, byte: number): void;
  /** mlock(2) the buffer (needed before physAddr is stable) */
  lock(): void;
  /** physical address through /proc/self/pagemap (no-IOMMU DMA); needs CAP_SYS_ADMIN */
  physAddr(offset: number): bigint;
  /** munmap once no IOMMU mapping refers to it any more; idempotent */
  close(): void;
}

/** A BAR (or other mmap-able area) mapped into this process. Never exposed as an ArrayBuffer. */
export interface NativeMapping {
  readonly sizeBytes: number;
  readonly regionIndex: number;
  /** offset of this mapping inside its region */
  readonly regionOffset: number;
  read(offset: number, width: 1 | 2 | 4): number;
  read(offset: number, width: 8): bigint;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
  write(offset: number, width: 8, value: bigint): void;
  /** munmap; afterwards every access throws ERR_VFIO_CLOSED. Also done by Device.close(). */
  close(): void;
}

export interface NativeEventFd {
  /** the raw fd number (for handing to other native objects) */
  readonly fd: number;
  /** non-blocking read of the counter; 0n when nothing is pending */
  read(): bigint;
  write(value: bigint | number): void;
  /**
   * resolves with the counter (reset to 0), or 0n after timeoutMs or at close(); waits on the
   * caller's event loop (no thread). Concurrent waits are served oldest first, one per signal.
   */
  wait(timeoutMs: number): Promise<bigint>;
  close(): void;
}

/** VFIO_DEVICE_SET_IRQS payload choice. */
export type NativeIrqData =
  | { type: 'none'; count: number }
  | { type: 'bool'; values: boolean[] }
  | { type: 'eventfd'; fds: Array<NativeEventFd | null> };

export interface NativeDevice {
  readonly bdf: string;
  info(): NativeDeviceInfo;
  /** VFIO_DEVICE_GET_REGION_INFO with the argsz retry for capability chains */
  regionInfo(index: number): NativeRegionInfo;
  irqInfo(index: number): NativeIrqInfo;
  /** pread/pwrite on the device fd at the region's offset; width 8 uses bigint */
  read(region: number, offset: number, width: 1 | 2 | 4): number;
  read(region: number, offset: number, width: 8): bigint;
  write(region: number, offset: number, width: 1 | 2 | 4, value: number): void;
  write(region: number, offset: number, width: 8, value: bigint): void;
  readBlock(region: number, offset: number, length: number): Buffer;
  writeBlock(region: number, offset: number, data: Uint8Array): void;
  /** mmap [offset, offset+sizeBytes) of a region that has VFIO_REGION_INFO_FLAG_MMAP */
  mmap(region: number, offset: number, sizeBytes: number): NativeMapping;
  /** action: VFIO_IRQ_SET_ACTION_{MASK,UNMASK,TRIGGER} */
  setIrqs(index: number, action: number, start: number, data: NativeIrqData): void;
  reset(): void;
  /** closes the device fd after munmapping every mapping; idempotent */
  close(): void;
}

/**
 * One IOMMU backend instance (QEMU's VFIOIOMMUClass / rust-vmm's VfioOps idea):
 * legacy = /dev/vfio/vfio container + groups with VFIO_TYPE1v2_IOMMU;
 * noiommu = the same with VFIO_NOIOMMU_IOMMU and /dev/vfio/noiommu-N groups;
 * iommufd = /dev/iommu + an IOAS, devices opened through /dev/vfio/devices/vfioN.
 */
export interface NativeIommu {
  readonly kind: IommuKind;
  /**
   * legacy/noiommu: opens `groupPath` (once per container), checks viability, attaches it,
   * sets the IOMMU type on the first group, then VFIO_GROUP_GET_DEVICE_FD(bdf).
   * iommufd: opens `cdevPath`, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT.
   */
  openDevice(spec: { bdf: string; groupPath?: string; cdevPath?: string }): NativeDevice;
  /** valid IOVA ranges from the kernel (type1 IOVA_RANGE cap / IOMMU_IOAS_IOVA_RANGES) */
  iovaRanges(): NativeIovaRange[];
  /** supported IOMMU page sizes bitmap (type1 iova_pgsizes; iommufd: out_iova_alignment) */
  pageSizes(): bigint;
  /** records in the DMA table and maps through the backend; checks iovaRanges() first */
  dmaMap(
    buffer: NativeDmaBuffer,
    bufferOffset: number,
    iova: bigint,
    sizeBytes: number,
    flags: number,
  ): void;
  /**
   * makes `buffer` the one dmaMapSelected maps from (held weakly: selecting keeps no memory
   * alive). The facade's fast path when the same buffer is mapped again and again.
   */
  selectDmaBuffer(buffer: NativeDmaBuffer): void;
  /** dmaMap of the selected buffer: ERR_VFIO_CLOSED once it is closed, TypeError if none */
  dmaMapSelected(bufferOffset: number, iova: bigint, sizeBytes: number, flags: number): void;
  /** dmaMapBatch of the selected buffer, both lists BigUint64Arrays read in place */
  dmaMapBatchSelected(
    bufferOffsets: BigUint64Array,
    iovas: BigUint64Array,
    sizeBytes: number,
    flags: number,
  ): void;
  /** unmaps [iova, iova+size); returns the bytes unmapped (0 if none); EINVAL if it would split an entry */
  dmaUnmap(iova: bigint, sizeBytes: number): number;
  /**
   * same as n dmaMap calls (stops at the first error, which it throws; earlier maps stay).
   * Either two arrays or two BigUint64Arrays (read in place: no per-entry N-API call).
   */
  dmaMapBatch(
    buffer: NativeDmaBuffer,
    bufferOffsets: number[] | BigUint64Array,
    iovas: bigint[] | BigUint64Array,
    sizeBytes: number,
    flags: number,
  ): void;
  /** same as one dmaUnmap per iova, in order; returns the total bytes; stops at the first error */
  dmaUnmapBatch(iovas: BigUint64Array, sizeBytes: number): number;
  dmaList(): NativeDmaEntry[];
  /** closes devices' shared state, unmaps everything, closes fds; idempotent */
  close(): void;
}

export interface NativeFakeKernel {
  /** forget every fake device and open fd */
  reset(): void;
  /** adds a device (see native/src/sys_fake.cc for the shape); returns its cdev index */
  addDevice(spec: FakeDeviceSpec): number;
  /** next call to `op` (e.g. 'VFIO_IOMMU_MAP_DMA', 'open') fails with errno, `count` times */
  injectError(op: string, errno: number, count?: number): void;
  /** fire the eventfd wired to (irq index, vector), as the device would */
  raiseIrq(bdf: string, index: number, vector: number): boolean;
  /** number of fds the fake considers open (leak checks) */
  openFds(): number;
  /** bytes the fake IOMMU currently maps */
  mappedBytes(): number;
  /** live mmaps made through the fake: device regions and DmaBuffer memory (leak checks) */
  liveMappings(): number;
}

export interface FakeDeviceSpec {
  bdf: string;
  group: number;
  noiommu?: boolean;
  /** if false the device has no cdev (like no-IOMMU devices) */
  cdev?: boolean;
  viable?: boolean;
  resetSupported?: boolean;
  /** regions by index; sizeBytes 0 = absent. Memory is plain RAM in the fake. */
  regions: Array<{
    sizeBytes: number;
    flags: number;
    sparse?: Array<{ offset: number; sizeBytes: number }>;
    /** adds a VFIO_REGION_INFO_CAP_TYPE capability */
    type?: { type: number; subtype: number };
    /** adds a VFIO_REGION_INFO_CAP_MSIX_MAPPABLE capability */
    msixMappable?: boolean;
  }>;
  irqs: Array<{ count: number; flags: number }>;
  iovaRanges?: Array<{ start: bigint; last: bigint }>;
}

/**
 * The client end of a vfio-user socket (real addon only). Nonblocking after connect; messages
 * are framed by the 16-byte header's msg_size and arrive on the loop of the creating thread.
 */
export interface NativeVfioUserSocket {
  /** sendmsg with SCM_RIGHTS (the fds are dup'ed, the caller keeps its own); queued if full */
  send(bytes: Uint8Array, fds?: number[]): void;
  /**
   * Called once per whole message (header included). `fds` arrived with exactly this message
   * and now belong to the caller (closeFd them). Reading starts when this is first set.
   */
  onMessage(cb: (msg: Uint8Array, fds: number[]) => void): void;
  /** EOF (errno 0), a receive error, or a broken frame (EPROTO); not called after close() */
  onClose(cb: (errno: number) => void): void;
  /** idempotent */
  close(): void;
}

export interface NativeVfioUserSocketClass {
  /** connect(2) to a UNIX socket path; throws VfioError op 'connect' */
  connect(path: string): NativeVfioUserSocket;
}

/** The device as the vfio-user server reports it (DEVICE_GET_INFO, REGION_INFO, IRQ_INFO). */
export interface NativeVfioUserLayout {
  /** VFIO_DEVICE_FLAGS_RESET (1) | VFIO_DEVICE_FLAGS_PCI (2) */
  flags: number;
  /** by region index (num_regions = length); sizeBytes 0 = absent */
  regions: Array<{
    sizeBytes: number;
    /** VFIO_REGION_INFO_FLAG_READ | _WRITE; MMAP is set for `memory` regions, else dropped */
    flags: number;
    /** page-aligned, ascending and disjoint when `memory` is set */
    mmapAreas?: Array<{ offset: number; sizeBytes: number }>;
    /**
     * the mmap areas are plain memory: listen() creates one sealed memfd for the region (its
     * fd goes with GET_REGION_INFO) and serves REGION_READ/WRITE inside an area from it, never
     * through regionRead/regionWrite. It belongs to the core, so it survives an adopt.
     */
    memory?: boolean;
  }>;
  /** by IRQ index (num_irqs = length); flags VFIO_IRQ_INFO_* */
  irqs: Array<{ count: number; flags: number }>;
}

/**
 * Called synchronously on the server's thread. A returned number is the errno of the reply
 * (0 or undefined = success); a callback that throws is answered with EIO and counted.
 */
export interface NativeVfioUserCallbacks {
  /** fill scratch[0, count) with the bytes read */
  regionRead(region: number, offset: number, count: number): number | undefined;
  /** the bytes written are in scratch[0, count) */
  regionWrite(region: number, offset: number, count: number): number | undefined;
  reset?(): number | undefined;
  /** a client connected, or (adopted) the client of an adopted host is now served here */
  onConnect?(adopted: boolean): void;
  /** after the client's memory is unmapped and its fds closed */
  onDisconnect?(reason: string): void;
  /** after a successful DEVICE_SET_IRQS; flags = VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_* */
  onIrqState?(index: number, start: number, count: number, flags: number): void;
  onDmaMap?(iova: bigint, sizeBytes: bigint, flags: number, hasFd: boolean): void;
  onDmaUnmap?(iova: bigint, sizeBytes: bigint): void;
  /** a request got an error reply (or a posted one failed, or the framing broke) */
  onProtocolError?(command: number, errno: number, message: string): void;
}

export interface NativeVfioUserServerOptions {
  /** default 1048576; 4096..64 MiB */
  maxDataXferSize?: number;
  /** default 65535 */
  maxDmaMaps?: number;
  /**
   * listen() attaches to the process's live server core for this socket path, if there is one
   * (left by a terminated worker whose server was persistent), instead of binding; it must
   * have the same layout and limits (else EINVAL). Without a core it binds as usual. Without
   * adopt, a path that has a core in this process is EADDRINUSE.
   */
  adopt?: boolean;
  /**
   * when this thread's environment goes away without close() (a terminated worker), the core
   * (listening socket, client connection, DMA maps, IRQ eventfds, the request in flight) stays
   * open for vfioUserFence and an adopting successor. Default: it is closed.
   */
  persistent?: boolean;
}

export interface NativeVfioUserServerStats {
  /** by command name (VERSION, DMA_MAP, ...); UNKNOWN for numbers past MIG_DATA_WRITE */
  requests: Record<string, number>;
  /** error replies (and failed posted commands) by errno name */
  errors: Record<string, number>;
  connects: number;
  disconnects: number;
  rejectedConnections: number;
  dmaMaps: number;
  dmaUnmaps: number;
  /** device DMA that found client memory gone (the client shrank the fd under its map) */
  dmaFaults: number;
  activeDmaMaps: number;
  irqsSignalled: number;
  /** No_reply commands that failed (never answered, per the spec) */
  postedErrors: number;
  /** callbacks that threw (answered with EIO) */
  callbackErrors: number;
  bytesIn: number;
  bytesOut: number;
  /** requests in flight at a watchdog restart, answered as a fenced device (vfioUserFence) */
  fencedReplies: number;
  /** wakeups served without a trip through the event loop (the next request came at once) */
  inlineServed: number;
  /** waits for the next request that ended without one (they back off) */
  inlineTimeouts: number;
  /** waits that ended because the event loop had work of its own (it runs it at once) */
  inlineYields: number;
  /** BAR accesses the direct route answered (setDirect), and its returned access errors */
  directReads: number;
  directWrites: number;
  directErrors: number;
  /** direct calls that did not return (trap, deadline, gone): retried through the model */
  directFallbacks: number;
  /**
   * the direct route's DMA port: the instance's dma.read / dma.write it copied natively, and
   * those it declined to the JS chain (outside the grant, not mmapped, too large, no client)
   */
  directDmaReads: number;
  directDmaWrites: number;
  directDmaDeclined: number;
  /**
   * the instance's dma.map-window calls (WIT 0.1.2) that got a window of the client's memory,
   * and those refused (not granted, not mapped, access denied, unsupported memory)
   */
  directWindowsMapped: number;
  directWindowsRefused: number;
  /** accesses per region index */
  regionReads: number[];
  regionWrites: number[];
}

/** What vfioUserFence found for a socket path. */
export interface NativeVfioUserFenceResult {
  /** a server core is registered for the path in this process */
  found: boolean;
  /** a thread serves it: nothing was done */
  attached: boolean;
  /** the command (REGION_READ, ...) of the request in flight that got its fenced answer */
  answered: string | null;
}

/** A DMA grant as the native DMA port checks it (host/device/types.ts DirectRoute.dma). */
export interface NativeDirectDmaGrant {
  /** grant.dma === 'all' */
  all: boolean;
  /** [iova, size, access: 1 read | 2 write | 3 both]; ignored when `all` */
  windows: readonly (readonly [bigint, bigint, number])[];
  /** per-call limit (grants.ts DMA_MAX_TRANSFER_BYTES): longer calls go through JS */
  maxBytes: number;
}

/** The vfio-user server (real addon only). Serves one client at a time on the creating thread. */
export interface NativeVfioUserServer {
  /** binds (EADDRINUSE if a live server answers; a stale socket file is replaced) and polls */
  listen(): void;
  /** idempotent; drops the client (unmaps DMA, closes fds), unlinks the socket */
  close(): void;
  readonly connected: boolean;
  /** drops the current client; false if none */
  disconnectClient(): boolean;
  /**
   * The direct BAR route (native/src/js/vfio_user_direct.cc, DeviceModel.bindDirect): aligned
   * 1/2/4/8-byte accesses to the BARs in `bars` (bit per index), outside `exclude`
   * ([region, offset, length]), call `instance` (a wasmtime NativeWasmInstance made on this
   * thread) without JS; null clears it. Returns whether a route is set (false in a build
   * without wasmtime). TypeError for anything that is not such an instance.
   * `dma`, the instance's DMA grant, installs the route's DMA port: the instance's dma.read/
   * dma.write of mmapped client memory inside the grant copy natively; without it (or for
   * anything else) they go through the instance's JS host as before.
   */
  setDirect(
    instance: unknown,
    bars: number,
    exclude: readonly [number, number, number][],
    dma?: NativeDirectDmaGrant,
  ): boolean;
  /** bounds-checked copy out of client memory: EFAULT unmapped, EACCES, E2BIG */
  dmaRead(iova: bigint, len: number): Uint8Array;
  dmaWrite(iova: bigint, data: Uint8Array): void;
  /**
   * What dmaRead (toGuest false) or dmaWrite of the range would do, without copying: true for
   * mmapped client memory, false when it goes by DMA_READ/DMA_WRITE message; throws as they do.
   */
  dmaCheck(iova: bigint, len: number, toGuest: boolean): boolean;
  /**
   * dmaRead straight into memory[offset, offset + len) (a plugin's linear memory): one bounds
   * check, one copy, nothing allocated. RangeError when the range is outside `memory`.
   */
  dmaReadInto(iova: bigint, memory: ArrayBuffer, offset: number, len: number): void;
  /** dmaWrite straight from memory[offset, offset + len). */
  dmaWriteFrom(iova: bigint, memory: ArrayBuffer, offset: number, len: number): void;
  /** eventfd write; false when the client armed no eventfd for it (RangeError if none such) */
  triggerIrq(index: number, subindex: number): boolean;
  /**
   * copy out of the memory of a `memory` region (any offset inside the region; the area check
   * is the caller's). VfioError ENODEV before listen() or after close(); RangeError outside.
   */
  memoryRead(region: number, offset: number, len: number): Uint8Array;
  memoryWrite(region: number, offset: number, data: Uint8Array): void;
  stats(): NativeVfioUserServerStats;
}

export type NativeVfioUserServerClass = new (
  socketPath: string,
  layout: NativeVfioUserLayout,
  callbacks: NativeVfioUserCallbacks,
  /** at least maxDataXferSize bytes; region data passes through it */
  scratch: Uint8Array,
  options?: NativeVfioUserServerOptions,
) => NativeVfioUserServer;

/**
 * A MAP_SHARED, read-write mapping of [offset, offset + sizeBytes) of a memory fd (a vfio-user
 * client mapping a region fd's sparse area). Copies only; never exposed as an ArrayBuffer.
 */
export interface NativeFdMapping {
  readonly sizeBytes: number;
  /** copies out; RangeError outside the mapping, ERR_VFIO_CLOSED after close() */
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Uint8Array): void;
  /** munmap; idempotent (the finalizer does it too). The fd stays the caller's. */
  close(): void;
}

/** Exports of vfio_core.node only (vfio-user sockets and memfds need real syscalls). */
export interface NativeVfioUser {
  VfioUserSocket: NativeVfioUserSocketClass;
  VfioUserServer: NativeVfioUserServerClass;
  /** mmap(fd, offset): offset page-aligned, the range inside the (regular) file, else EINVAL */
  FdMapping: new (
    fd: number,
    offset: number,
    sizeBytes: number,
  ) => NativeFdMapping;
  /** memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) + ftruncate; returns the fd */
  memfdCreate(name: string, sizeBytes: number): number;
  /** fcntl(F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), as QEMU's memory-backend-memfd seals */
  memfdSeal(fd: number): void;
  /** pread exactly len bytes (EIO at end of file) */
  fdRead(fd: number, offset: number, len: number): Uint8Array;
  /** pwrite all of data */
  fdWrite(fd: number, offset: number, data: Uint8Array): void;
  /** ftruncate(2) */
  fdTruncate(fd: number, sizeBytes: number): void;
  /** close(2); fds 0-2 are refused with RangeError */
  closeFd(fd: number): void;
  /**
   * On the detached server core of socketPath (its thread went away): answers the request in
   * flight as a fenced device would (REGION_READ all-ones, REGION_WRITE success with the write
   * dropped, anything else EIO; nothing when posted). Any thread; the core stays for adoption.
   */
  vfioUserFence(socketPath: string): NativeVfioUserFenceResult;
  /**
   * Closes the detached server core of socketPath (fenced answer first, then the client is
   * dropped, the socket file removed). false when there is none; VfioError EBUSY when a thread
   * still serves it.
   */
  vfioUserClose(socketPath: string): boolean;
}

export interface Native {
  abiVersion: number;
  /** 'linux' for vfio_core.node, 'fake' for vfio_core_fake.node */
  sysLayer: 'linux' | 'fake';
  setErrorFactory(factory: ErrorFactory): void;
  Iommu: new (kind: IommuKind) => NativeIommu;
  DmaBuffer: new (sizeBytes: number) => NativeDmaBuffer;
  EventFd: new () => NativeEventFd;
  /**
   * Benchmarks only (bench/lab/vfio-bench.ts): n x (map, unmap) of [iova, iova + sizeBytes) of
   * `buffer` in one native loop, read+write; returns the elapsed nanoseconds. 'backend': the
   * backend's ioctls alone (no DMA table), what bench/c/vfio_bench.c does; 'table': the full
   * dmaMap/dmaUnmap path (table, IOVA range checks) without any JS crossing per call.
   * Refused like dmaMap when the range is not mappable; stops at the first error.
   */
  benchDmaLoop(
    iommu: NativeIommu,
    buffer: NativeDmaBuffer,
    bufferOffset: number,
    iova: bigint,
    sizeBytes: number,
    n: number,
    mode: 'backend' | 'table',
  ): number;
  /** present only in vfio_core_fake.node */
  fake?: NativeFakeKernel;
  /**
   * The wasmtime engine's native side (host/plugins/engines/wasmtime-native.ts); present only in
   * an addon built with wasmtime linked in (scripts/setup.sh builds it).
   */
  wasmtime?: NativeWasmtime;
}

/** Every runtime export; a test checks this against Object.keys(addon). */
export const NATIVE_KEYS = {
  abiVersion: true,
  sysLayer: true,
  setErrorFactory: true,
  Iommu: true,
  DmaBuffer: true,
  EventFd: true,
  benchDmaLoop: true,
  fake: true,
  wasmtime: true,
} as const satisfies Record<keyof Native, true>;

/** The extra runtime exports of vfio_core.node (see NativeVfioUser). */
export const NATIVE_VFIO_USER_KEYS = {
  VfioUserSocket: true,
  VfioUserServer: true,
  FdMapping: true,
  memfdCreate: true,
  fdRead: true,
  fdWrite: true,
  fdTruncate: true,
  memfdSeal: true,
  closeFd: true,
  vfioUserFence: true,
  vfioUserClose: true,
} as const satisfies Record<keyof NativeVfioUser, true>;

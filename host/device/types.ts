// SPDX-License-Identifier: MIT
// The device-model contract: what a transport (the vfio-user server, the test harness, later
// a passthrough variant on a real VFIO device) drives. A DeviceModel is a plugin instance plus
// the host's emulation around it (PCI config space, MSI/MSI-X, fencing, counters). Transports
// never see the plugin; plugins never see the transport.
//
// Region and IRQ numbering is vfio's (linux/vfio.h, reused by vfio-user): regions BAR0-5 = 0-5,
// ROM = 6, CONFIG = 7, VGA = 8; IRQ indices INTx 0, MSI 1, MSI-X 2, ERR 3, REQ 4.

import type { DmaTarget } from '../plugins/engine.js';
import type { DirectDmaGrant } from '../plugins/grants.js';

/** VFIO_REGION_INFO_FLAG_* */
export const REGION_FLAG_READ = 0x1;
export const REGION_FLAG_WRITE = 0x2;
export const REGION_FLAG_MMAP = 0x4;
/** VFIO_IRQ_INFO_* */
export const IRQ_FLAG_EVENTFD = 0x1;
export const IRQ_FLAG_MASKABLE = 0x2;
export const IRQ_FLAG_AUTOMASKED = 0x4;
export const IRQ_FLAG_NORESIZE = 0x8;

export const REGION_CONFIG = 7;
export const NUM_REGIONS = 9;
export const IRQ_INTX = 0;
export const IRQ_MSI = 1;
export const IRQ_MSIX = 2;
export const IRQ_ERR = 3;
export const IRQ_REQ = 4;
export const NUM_IRQS = 5;

/** One vfio region as a client sees it (size 0 = absent). */
export interface RegionLayout {
  index: number;
  sizeBytes: number;
  flags: number;
  /** Areas a client may mmap (sparse mmap capability); empty = everything is trapped. */
  mmapAreas: { offset: number; sizeBytes: number }[];
  /**
   * The mmap areas are the plugin's memory areas (WIT 0.1.1 `memory-areas`): plain memory the
   * transport backs and shares with the client (bindMemory), not registers.
   */
  memory?: boolean;
}

/**
 * The bytes of a device's memory areas, by region index and offset in the region (the
 * vfio-user server's memfd mapping, or the model's own buffers). Callers check bounds and
 * areas first; out-of-bounds calls throw RangeError.
 */
export interface SharedMemorySpace {
  read(region: number, offset: number, len: number): Uint8Array;
  write(region: number, offset: number, data: Uint8Array): void;
}

export interface IrqLayout {
  index: number;
  count: number;
  flags: number;
}

/** Where the model's interrupts go (the vfio-user server: an eventfd write per trigger). */
export interface IrqSink {
  /** Signal `index`/`subindex` (e.g. IRQ_MSI, vector 0). False if nothing is armed for it. */
  trigger(index: number, subindex: number): boolean;
}

/** Guest memory as the transport maps it (IOVA = guest physical for vfio-user without vIOMMU). */
export interface DmaSpace {
  /** Throws WitError('not-mapped' | 'access-denied' | 'too-large') (host/plugins/engine.ts). */
  read(iova: bigint, len: number): Uint8Array;
  write(iova: bigint, data: Uint8Array): void;
  /**
   * Optional fast path of read: `target.alloc(len)`, then the bytes go straight there; returns
   * that offset. Same errors as read (an allocation may have happened before one).
   */
  readInto?(iova: bigint, len: number, target: DmaTarget): number;
  /** Optional fast path of write: the bytes come straight from memory[offset, offset + len). */
  writeFrom?(iova: bigint, memory: ArrayBuffer, offset: number, len: number): void;
}

/** Bytes between the device's byte-stream and the user (a UART's line). */
export interface ByteStreamPeer {
  /** The device transmitted `data`. */
  onDeviceOutput(data: Uint8Array): void;
}

/**
 * What a transport may call directly (DeviceModel.bindDirect): one naturally aligned access of
 * 1, 2, 4 or 8 bytes to a BAR in `bars`, not overlapping `exclude`, is `target`'s region-read or
 * region-write with the same BAR, offset and width; everything else goes through the model.
 */
export interface DirectRoute {
  /** the engine's native instance handle (PluginInstance.native) */
  target: unknown;
  /** one bit per BAR index 0..5 */
  bars: number;
  /** [region, offset, length] the model emulates itself (the MSI-X table and PBA) */
  exclude: [number, number, number][];
  /** the instance's DMA grant, for a transport's native DMA port */
  dma: DirectDmaGrant;
}

export interface DeviceStats {
  reads: number;
  writes: number;
  irqs: number;
  /** Host-import calls refused by a grant check, by interface ('dma', 'irq', ...). */
  denied: Record<string, number>;
  fences: number;
  restarts: number;
  fenced: boolean;
}

/**
 * A device as the transport drives it. `read`/`write` take any length at any offset inside the
 * region (the model splits them into naturally aligned plugin accesses) and never throw for a
 * plugin fault: a fenced device reads all-ones and drops writes. They throw RangeError only for
 * accesses outside `regions` (transports check first and answer EINVAL themselves), and
 * PluginError kind 'returned' when the plugin answered with an access error (not a fault: its
 * `errno`, from host/plugins/errno-map.ts, is what the transport replies with).
 */
export interface DeviceModel {
  readonly name: string;
  readonly regions: readonly RegionLayout[];
  readonly irqs: readonly IrqLayout[];
  readonly resetSupported: boolean;
  read(region: number, offset: number, out: Uint8Array): void;
  write(region: number, offset: number, data: Uint8Array): void;
  /** Device reset (DEVICE_RESET, FLR): plugin reset, config space to power-on values. */
  reset(): void;
  attach(io: { irq: IrqSink; dma: DmaSpace; stream?: ByteStreamPeer }): void;
  /** The transport lost its client: DMA and IRQs are gone, device state stays (vfio-user spec). */
  detach(): void;
  /**
   * The transport holds the memory of the regions marked `memory` from now on (undefined: the
   * model's own buffers again). Bytes in the model's buffers are not copied over: the
   * transport's memory is the device's (it outlives the model across a worker restart).
   * Optional: a model without memory regions need not implement it.
   */
  bindMemory?(space: SharedMemorySpace | undefined): void;
  /**
   * The transport may answer some BAR accesses by calling the plugin itself (the vfio-user
   * server's direct route, for a wasmtime instance: no JS per access). The model calls `sink`
   * now and whenever its live instance changes, with what may be called directly, or
   * undefined (none: fenced, closed, or an engine without a native handle). Optional.
   */
  bindDirect?(sink: ((route: DirectRoute | undefined) => void) | undefined): void;
  /** Queue bytes for the device's byte-stream (the user typed them). */
  streamInput(data: Uint8Array): void;
  /**
   * SET_IRQS with DATA_NONE: ACTION_MASK / ACTION_UNMASK hold or release vectors
   * [start, start+count) of irq `index` (an unmask delivers what became pending, and re-signals
   * an INTx line still asserted); ACTION_TRIGGER signals them. Optional: a model without it
   * treats those requests as no-ops. Throws RangeError outside `irqs[index].count`.
   */
  irqState?(
    index: number,
    start: number,
    count: number,
    action: 'mask' | 'unmask' | 'trigger',
  ): void;
  stats(): DeviceStats;
  close(): void;
}

// SPDX-License-Identifier: MIT
// VfioDevice: one opened VFIO device. It does not know which IOMMU backend opened it
// (legacy container/group, iommufd/cdev or no-IOMMU): the native handle behaves the same.

import type {
  NativeDevice,
  NativeDeviceInfo,
  NativeEventFd,
  NativeIrqInfo,
  NativeMapping,
  NativeRegionInfo,
} from '../native/types.js';
import { Mapping } from './region.js';
import {
  PCI_COMMAND,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_REGION_NAMES,
  VFIO_REGION_INFO_FLAG_MMAP,
} from './uapi.js';

export type Width = 1 | 2 | 4 | 8;

function checkWidth(width: number): asserts width is Width {
  if (width !== 1 && width !== 2 && width !== 4 && width !== 8) {
    throw new RangeError(`width must be 1, 2, 4 or 8 (received ${width})`);
  }
}

/** An eventfd the caller owns; pass it to {@link VfioDevice.enableIrq}. */
export interface EventFdLike {
  readonly native: NativeEventFd;
}

/** A region as the kernel describes it, with a readable name. */
export interface RegionInfo extends NativeRegionInfo {
  name: string;
}

export class VfioDevice {
  readonly #dev: NativeDevice;
  readonly bdf: string;
  readonly backend: string;
  #info: NativeDeviceInfo | undefined;

  /** @internal made by openDevice() / Iommu.openDevice() */
  constructor(dev: NativeDevice, backend: string) {
    this.#dev = dev;
    this.bdf = dev.bdf;
    this.backend = backend;
  }

  /** VFIO_DEVICE_GET_INFO (cached). */
  info(): NativeDeviceInfo {
    this.#info ??= this.#dev.info();
    return this.#info;
  }

  get resetSupported(): boolean {
    return (this.info().flags & VFIO_DEVICE_FLAGS_RESET) !== 0;
  }

  /** VFIO_DEVICE_GET_REGION_INFO, capability chain included. */
  regionInfo(index: number): RegionInfo {
    const r = this.#dev.regionInfo(index);
    return { ...r, name: VFIO_PCI_REGION_NAMES[index] ?? `region${index}` };
  }

  /** Every region; absent ones (kernel EINVAL, e.g. VGA on a non-VGA device) are left out. */
  regions(): RegionInfo[] {
    const out: RegionInfo[] = [];
    for (let i = 0; i < this.info().numRegions; i++) {
      try {
        out.push(this.regionInfo(i));
      } catch (err) {
        if ((err as { code?: string }).code !== 'EINVAL') throw err;
      }
    }
    return out;
  }

  irqInfo(index: number): NativeIrqInfo {
    return this.#dev.irqInfo(index);
  }

  irqs(): NativeIrqInfo[] {
    const out: NativeIrqInfo[] = [];
    for (let i = 0; i < this.info().numIrqs; i++) {
      try {
        out.push(this.irqInfo(i));
      } catch (err) {
        // vfio-pci answers EINVAL for ERR/REQ indexes a device does not have (no PCIe AER).
        if ((err as { code?: string }).code !== 'EINVAL') throw err;
      }
    }
    return out;
  }

  /** Register read through pread on the device fd. Width 8 returns a bigint. */
  read(region: number, offset: number, width: 1 | 2 | 4): number;
  read(region: number, offset: number, width: 8): bigint;
  read(region: number, offset: number, width: Width): number | bigint;
  read(region: number, offset: number, width: Width): number | bigint {
    checkWidth(width);
    return width === 8 ? this.#dev.read(region, offset, 8) : this.#dev.read(region, offset, width);
  }

  write(region: number, offset: number, width: 1 | 2 | 4, value: number): void;
  write(region: number, offset: number, width: 8, value: bigint): void;
  write(region: number, offset: number, width: Width, value: number | bigint): void;
  write(region: number, offset: number, width: Width, value: number | bigint): void {
    checkWidth(width);
    if (width === 8) this.#dev.write(region, offset, 8, BigInt(value));
    else this.#dev.write(region, offset, width, Number(value));
  }

  readBlock(region: number, offset: number, length: number): Buffer {
    return this.#dev.readBlock(region, offset, length);
  }

  writeBlock(region: number, offset: number, data: Uint8Array): void {
    this.#dev.writeBlock(region, offset, data);
  }

  /** PCI config space read (the kernel virtualises parts of it). */
  configRead(offset: number, width: 1 | 2 | 4): number {
    return this.#dev.read(VFIO_PCI_CONFIG_REGION_INDEX, offset, width);
  }

  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#dev.write(VFIO_PCI_CONFIG_REGION_INDEX, offset, width, value);
  }

  /** Sets bits in PCI_COMMAND (read-modify-write); returns the value read back. */
  setCommandBits(bits: number): number {
    const cmd = this.configRead(PCI_COMMAND, 2);
    this.configWrite(PCI_COMMAND, 2, (cmd | bits) & 0xffff);
    return this.configRead(PCI_COMMAND, 2);
  }

  /**
   * mmap a region (whole, or [offset, offset+sizeBytes)). The mapping dies with the device:
   * after close() every access throws ERR_VFIO_CLOSED instead of touching unmapped memory.
   */
  mmap(region: number, offset = 0, sizeBytes?: number): Mapping {
    const info = this.regionInfo(region);
    if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
      throw new RangeError(
        `region ${info.name} is not mmap-able (flags 0x${info.flags.toString(16)})`,
      );
    }
    const native: NativeMapping = this.#dev.mmap(
      region,
      offset,
      sizeBytes ?? info.sizeBytes - offset,
    );
    return new Mapping(native);
  }

  /** Wires eventfds to vectors [start, start+fds.length) of irq `index` (ACTION_TRIGGER). */
  enableIrq(index: number, fds: Array<EventFdLike | null>, start = 0): void {
    this.#dev.setIrqs(index, VFIO_IRQ_SET_ACTION_TRIGGER, start, {
      type: 'eventfd',
      fds: fds.map((f) => f?.native ?? null),
    });
  }

  /** Tears down every vector of irq `index` (DATA_NONE, count 0). */
  disableIrq(index: number): void {
    this.#dev.setIrqs(index, VFIO_IRQ_SET_ACTION_TRIGGER, 0, { type: 'none', count: 0 });
  }

  /** Software trigger of vectors (DATA_NONE + ACTION_TRIGGER). */
  triggerIrq(index: number, start = 0, count = 1): void {
    this.#dev.setIrqs(index, VFIO_IRQ_SET_ACTION_TRIGGER, start, { type: 'none', count });
  }

  maskIrq(index: number, start = 0, count = 1): void {
    this.#dev.setIrqs(index, VFIO_IRQ_SET_ACTION_MASK, start, { type: 'none', count });
  }

  unmaskIrq(index: number, start = 0, count = 1): void {
    this.#dev.setIrqs(index, VFIO_IRQ_SET_ACTION_UNMASK, start, { type: 'none', count });
  }

  /** VFIO_DEVICE_RESET. EINVAL/ENOTTY from the kernel when the device has no reset method. */
  reset(): void {
    this.#dev.reset();
  }

  /** Unmaps every mapping, closes the device fd. Idempotent. */
  close(): void {
    this.#dev.close();
  }
}

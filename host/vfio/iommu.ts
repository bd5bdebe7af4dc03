// SPDX-License-Identifier: MIT
// The IOMMU backend interface (QEMU's VFIOIOMMUClass, rust-vmm's VfioOps): one class, three
// kernel paths behind it, chosen at runtime.
//   legacy   /dev/vfio/vfio container + /dev/vfio/<group>, VFIO_TYPE1v2_IOMMU
//   iommufd  /dev/iommu + /dev/vfio/devices/vfioN (kernel "vfio_device cdev for iommufd")
//   noiommu  /dev/vfio/vfio + /dev/vfio/noiommu-<group>, VFIO_NOIOMMU_IOMMU (no translation:
//            the device DMAs to physical addresses; needs an explicit opt-in)

import { ConfigError } from '../errors.js';
import type { IommuKind, NativeDmaEntry, NativeIommu, NativeIovaRange } from '../native/types.js';
import { VfioDevice } from './device.js';
import type { DmaBuffer } from './dma.js';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE } from './uapi.js';

export type BackendRequest = IommuKind | 'auto';

/** What sysfs and /dev say about one device and the kernel (host/sysfs/pci.ts gathers it). */
export interface BackendFacts {
  bdf: string;
  /** /dev/iommu exists */
  iommufd: boolean;
  /** /dev/vfio/vfio exists */
  container: boolean;
  /** the device's /dev/vfio/devices/vfioN, if any */
  cdev: string | null;
  /** /dev/vfio/<group> or /dev/vfio/noiommu-<group>, if any */
  groupPath: string | null;
  /** the group node is a noiommu-N one */
  noiommuGroup: boolean;
  /** vfio.enable_unsafe_noiommu_mode=Y */
  noiommuEnabled: boolean;
}

export interface BackendChoice {
  kind: IommuKind;
  groupPath?: string;
  cdevPath?: string;
}

/**
 * Picks the backend: iommufd/cdev when /dev/iommu and the device's vfioN node exist, else legacy;
 * no-IOMMU only when the kernel enables it AND the caller opts in (request 'noiommu' or
 * allowNoiommu). An explicit request is honoured or refused with the reason, never substituted.
 */
export function chooseBackend(
  facts: BackendFacts,
  request: BackendRequest = 'auto',
  allowNoiommu = false,
): BackendChoice {
  const bdf = facts.bdf;
  const legacyOk = facts.container && facts.groupPath !== null && !facts.noiommuGroup;
  const cdevOk = facts.iommufd && facts.cdev !== null;
  const noiommuOk = facts.container && facts.groupPath !== null && facts.noiommuGroup;
  const noVfio = !facts.container && !facts.iommufd;
  if (noVfio) {
    throw new ConfigError(
      'ERR_VFIO_NOT_AVAILABLE',
      'no VFIO in this kernel (neither /dev/vfio/vfio nor /dev/iommu exists)',
      'load the driver: modprobe vfio-pci',
    );
  }
  switch (request) {
    case 'iommufd':
      if (cdevOk && facts.cdev) return { kind: 'iommufd', cdevPath: facts.cdev };
      throw new ConfigError(
        'ERR_VFIO_BACKEND_UNAVAILABLE',
        `iommufd backend unavailable for ${bdf}: ${facts.iommufd ? 'the device has no /dev/vfio/devices/vfioN node' : 'no /dev/iommu'}`,
        'the kernel needs CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV, and the device bound to vfio-pci (vfiobox bind); or use --backend legacy',
      );
    case 'legacy':
      if (legacyOk && facts.groupPath) return { kind: 'legacy', groupPath: facts.groupPath };
      throw new ConfigError(
        'ERR_VFIO_BACKEND_UNAVAILABLE',
        `legacy backend unavailable for ${bdf}: ${facts.noiommuGroup ? 'its group is a no-IOMMU group' : 'no /dev/vfio/<group> node'}`,
        facts.noiommuGroup
          ? 'use --backend noiommu'
          : `bind it to vfio-pci first: vfiobox bind ${bdf}`,
      );
    case 'noiommu':
      if (!facts.noiommuEnabled) {
        throw new ConfigError(
          'ERR_VFIO_NOIOMMU_DISABLED',
          'no-IOMMU mode is not enabled in the kernel',
          'load vfio with enable_unsafe_noiommu_mode=1 (this gives up DMA isolation; the kernel taints itself)',
        );
      }
      if (noiommuOk && facts.groupPath) return { kind: 'noiommu', groupPath: facts.groupPath };
      throw new ConfigError(
        'ERR_VFIO_BACKEND_UNAVAILABLE',
        `${bdf} has no /dev/vfio/noiommu-<group> node`,
        `bind it to vfio-pci with no-IOMMU mode enabled: vfiobox bind ${bdf}`,
      );
    case 'auto':
      if (cdevOk && facts.cdev) return { kind: 'iommufd', cdevPath: facts.cdev };
      if (legacyOk && facts.groupPath) return { kind: 'legacy', groupPath: facts.groupPath };
      if (noiommuOk && facts.groupPath) {
        if (allowNoiommu) return { kind: 'noiommu', groupPath: facts.groupPath };
        throw new ConfigError(
          'ERR_VFIO_NOIOMMU_OPT_IN',
          `${bdf} is only reachable through no-IOMMU mode, which gives up DMA isolation`,
          'opt in explicitly: --backend noiommu',
        );
      }
      throw new ConfigError(
        'ERR_VFIO_NOT_BOUND',
        `${bdf} is not usable through VFIO (no group or cdev node: is it bound to vfio-pci?)`,
        `vfiobox bind ${bdf}`,
      );
  }
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer (received ${value})`);
  }
}

/** The list as a BigUint64Array (itself when it is one); RangeError for a value outside u64. */
function toU64(list: readonly (bigint | number)[] | BigUint64Array): BigUint64Array {
  if (list instanceof BigUint64Array) return list;
  const out = new BigUint64Array(list.length);
  list.forEach((v, i) => {
    const b = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
    if (b < 0n || b >= 1n << 64n) {
      throw new RangeError(`entry ${i} must be an integer in [0, 2^64) (received ${v})`);
    }
    out[i] = b;
  });
  return out;
}

/** Default DMA permissions: the device may read and write. */
export const DMA_READ_WRITE = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

/** One IOMMU context (container or IOAS) with its DMA map table. */
export class Iommu {
  readonly #n: NativeIommu;
  readonly kind: IommuKind;
  /** the buffer the addon maps from (selectDmaBuffer); weak, so it never keeps one alive */
  #selected: WeakRef<DmaBuffer> | undefined;

  /** @internal use openIommu() */
  constructor(n: NativeIommu) {
    this.#n = n;
    this.kind = n.kind;
  }

  /** @internal the native handle (benchmarks: native().benchDmaLoop) */
  get native(): NativeIommu {
    return this.#n;
  }

  /** Opens a device through this backend. */
  openDevice(spec: { bdf: string; groupPath?: string; cdevPath?: string }): VfioDevice {
    return new VfioDevice(this.#n.openDevice(spec), this.kind);
  }

  /** Valid IOVA ranges (inclusive `last`), as the kernel reports them. */
  iovaRanges(): NativeIovaRange[] {
    return this.#n.iovaRanges();
  }

  pageSizes(): bigint {
    return this.#n.pageSizes();
  }

  /** Maps `sizeBytes` of `buffer` (from `bufferOffset`) at `iova` for device DMA. */
  dmaMap(
    buffer: DmaBuffer,
    iova: bigint,
    sizeBytes: number,
    bufferOffset = 0,
    flags = DMA_READ_WRITE,
  ): void {
    checkSize('sizeBytes', sizeBytes);
    checkSize('bufferOffset', bufferOffset);
    this.#select(buffer);
    this.#n.dmaMapSelected(bufferOffset, iova, sizeBytes, flags);
  }

  /**
   * The same buffer as last time (the common case: one buffer, many maps) is not passed
   * again, which saves the addon its type-tag check and unwrap (bench/README.md).
   */
  #select(buffer: DmaBuffer): void {
    if (this.#selected?.deref() !== buffer) {
      this.#n.selectDmaBuffer(buffer.native);
      this.#selected = new WeakRef(buffer);
    }
  }

  /**
   * n mappings of `sizeBytes` each in one native call (the batch form for small maps). With
   * BigUint64Arrays for both lists the addon reads them in place, which is the fast form;
   * plain arrays work too. Stops at the first error (thrown); earlier maps stay.
   */
  dmaMapBatch(
    buffer: DmaBuffer,
    iovas: bigint[] | BigUint64Array,
    bufferOffsets: number[] | BigUint64Array,
    sizeBytes: number,
    flags = DMA_READ_WRITE,
  ): void {
    if (iovas.length !== bufferOffsets.length) {
      throw new RangeError(
        `iovas and bufferOffsets differ in length (${iovas.length} vs ${bufferOffsets.length})`,
      );
    }
    checkSize('sizeBytes', sizeBytes);
    if (iovas instanceof BigUint64Array || bufferOffsets instanceof BigUint64Array) {
      // one typed form for the addon: convert whichever list is a plain array; the selected
      // buffer's own function, as for dmaMap
      this.#select(buffer);
      this.#n.dmaMapBatchSelected(toU64(bufferOffsets), toU64(iovas), sizeBytes, flags);
      return;
    }
    this.#n.dmaMapBatch(buffer.native, bufferOffsets, iovas, sizeBytes, flags);
  }

  /** Unmaps [iova, iova+sizeBytes) for each iova, in order; returns the total bytes unmapped. */
  dmaUnmapBatch(iovas: bigint[] | BigUint64Array, sizeBytes: number): number {
    checkSize('sizeBytes', sizeBytes);
    return this.#n.dmaUnmapBatch(toU64(iovas), sizeBytes);
  }

  /** Unmaps [iova, iova+sizeBytes); returns the bytes unmapped. */
  dmaUnmap(iova: bigint, sizeBytes: number): number {
    checkSize('sizeBytes', sizeBytes);
    return this.#n.dmaUnmap(iova, sizeBytes);
  }

  dmaList(): NativeDmaEntry[] {
    return this.#n.dmaList();
  }

  /** Unmaps everything and closes the container/iommufd. Close devices first. Idempotent. */
  close(): void {
    this.#n.close();
  }
}

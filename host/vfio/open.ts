// SPDX-License-Identifier: MIT
// Opening a device by PCI address: readiness checks and backend choice (ready.ts), then the
// native open through an IOMMU context.

import type { IommuKind } from '../native/types.js';
import type { VfioDevice } from './device.js';
import { type BackendRequest, Iommu } from './iommu.js';
import { native } from './native.js';
import { checkVfioReady } from './ready.js';

export interface OpenOptions {
  /** 'auto' (default): iommufd when the device has a cdev and /dev/iommu exists, else legacy */
  backend?: BackendRequest;
  /** allow 'auto' to fall back to no-IOMMU mode (never implied) */
  allowNoiommu?: boolean;
  /** open into an existing IOMMU context (several devices sharing one container/IOAS) */
  iommu?: Iommu;
}

/** Opens an IOMMU context of the given kind (container or iommufd + IOAS). */
export function openIommu(kind: IommuKind): Iommu {
  return new Iommu(new (native().Iommu)(kind));
}

/**
 * Opens the device at `bdf` (e.g. '0000:00:04.0') through VFIO. Returns the device and the
 * IOMMU context it is attached to (close the device first, then the context).
 */
export async function openDevice(
  bdf: string,
  opts: OpenOptions = {},
): Promise<{ iommu: Iommu; device: VfioDevice }> {
  const ready = await checkVfioReady(bdf, {
    backend: opts.iommu?.kind ?? opts.backend ?? 'auto',
    allowNoiommu: opts.allowNoiommu ?? false,
  });
  const iommu = opts.iommu ?? openIommu(ready.kind);
  try {
    const spec: { bdf: string; groupPath?: string; cdevPath?: string } = { bdf: ready.device.bdf };
    if (ready.groupPath) spec.groupPath = ready.groupPath;
    if (ready.cdevPath) spec.cdevPath = ready.cdevPath;
    return { iommu, device: iommu.openDevice(spec) };
  } catch (err) {
    if (!opts.iommu) iommu.close();
    throw err;
  }
}

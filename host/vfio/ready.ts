// SPDX-License-Identifier: MIT
// Is a device usable through VFIO, and through which backend? Checks run in the order a user
// fixes them (vfio-pci loaded, device bound, IOMMU or no-IOMMU mode, a VFIO node, a viable group);
// the backend itself is picked by the one rule in iommu.ts (chooseBackend).

import { ConfigError } from '../errors.js';
import type { IommuKind } from '../native/types.js';
import {
  getPciDevice,
  groupNotViableError,
  groupPath,
  groupViability,
  MODPROBE_HINT,
  NOIOMMU_HINT,
  noGroupError,
  type PciDevice,
  type SysfsOptions,
  VFIO_PCI_DRIVER,
  vfioAvailable,
} from '../sysfs/pci.js';
import { type BackendFacts, type BackendRequest, chooseBackend } from './iommu.js';

/** A device ready to be opened, and how (the arguments of NativeIommu.openDevice). */
export interface VfioReady {
  device: PciDevice;
  facts: BackendFacts;
  kind: IommuKind;
  groupPath: string | null;
  cdevPath: string | null;
}

export interface ReadyOptions extends SysfsOptions {
  backend?: BackendRequest;
  /** let 'auto' choose no-IOMMU mode; default: only when the device has nothing else */
  allowNoiommu?: boolean;
}

/**
 * Checks that `bdf` can be opened through VFIO and picks the backend.
 * @throws ConfigError with a hint naming the fix
 */
export async function checkVfioReady(bdf: string, opts: ReadyOptions = {}): Promise<VfioReady> {
  const [device, avail] = await Promise.all([getPciDevice(bdf, opts), vfioAvailable(opts)]);
  if (!avail.vfioPciDriver) {
    throw new ConfigError(
      'ERR_VFIO_NO_VFIO_PCI',
      'the vfio-pci driver is not loaded',
      MODPROBE_HINT,
    );
  }
  if (device.driver !== VFIO_PCI_DRIVER) {
    throw new ConfigError(
      'ERR_VFIO_NOT_BOUND',
      `${device.bdf} is bound to ${device.driver ?? 'no driver'}, not vfio-pci`,
      `run: vfiobox bind ${device.bdf}`,
    );
  }
  if ((device.iommuGroup === null || device.noiommu) && !avail.noiommuEnabled) {
    throw new ConfigError(
      'ERR_VFIO_NOIOMMU_DISABLED',
      `${device.bdf} has no IOMMU and no-IOMMU mode is not enabled`,
      NOIOMMU_HINT,
    );
  }
  const useCdev = !device.noiommu && device.cdev !== null && avail.iommufd;
  if (!useCdev && !avail.vfioContainer) {
    throw new ConfigError('ERR_VFIO_NO_VFIO', 'no /dev/vfio/vfio', MODPROBE_HINT);
  }
  if (device.iommuGroup === null) throw noGroupError(device.bdf);
  const viability = await groupViability(device.iommuGroup, opts);
  if (!viability.viable) throw groupNotViableError(viability);
  const facts: BackendFacts = {
    bdf: device.bdf,
    iommufd: avail.iommufd,
    container: avail.vfioContainer,
    // A no-IOMMU device's cdev needs BIND_IOMMUFD with iommufd=-1, which we do not do yet.
    cdev: device.noiommu ? null : device.cdev,
    groupPath: groupPath(device),
    noiommuGroup: device.noiommu,
    noiommuEnabled: avail.noiommuEnabled,
  };
  const choice = chooseBackend(facts, opts.backend ?? 'auto', opts.allowNoiommu ?? device.noiommu);
  return {
    device,
    facts,
    kind: choice.kind,
    groupPath: choice.groupPath ?? null,
    cdevPath: choice.cdevPath ?? null,
  };
}

// SPDX-License-Identifier: MIT
// vfiobox's public API: re-exports only.

export type { PluginErrorKind, VfioErrorInit } from './errors.js';
export {
  ConfigError,
  errnoName,
  errnoValue,
  PluginError,
  ProtocolError,
  VfioError,
} from './errors.js';
export type { IdEntry, IdTable, MatchResult, PciIds } from './match.js';
export { countWildcards, matchIdTable, PCI_ANY_ID } from './match.js';
export type { BindOptions, BindResult, SysfsWriter } from './sysfs/bind.js';
export { bindToVfio, unbind } from './sysfs/bind.js';
export type { GroupViability, PciDevice, SysfsOptions, VfioFacts } from './sysfs/pci.js';
export {
  getPciDevice,
  groupDevices,
  groupViability,
  listPciDevices,
  parseBdf,
  vfioAvailable,
} from './sysfs/pci.js';
export type { EventFdLike, RegionInfo, Width } from './vfio/device.js';
export { VfioDevice } from './vfio/device.js';
export { DmaBuffer, EventFd } from './vfio/dma.js';
export type { BackendChoice, BackendFacts, BackendRequest } from './vfio/iommu.js';
export { chooseBackend, DMA_READ_WRITE, Iommu } from './vfio/iommu.js';
export { useNativeLayer } from './vfio/native.js';
export type { OpenOptions } from './vfio/open.js';
export { openDevice, openIommu } from './vfio/open.js';
export type { ReadyOptions, VfioReady } from './vfio/ready.js';
export { checkVfioReady } from './vfio/ready.js';
export { Mapping } from './vfio/region.js';
export * as uapi from './vfio/uapi.js';

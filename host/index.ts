// SPDX-License-Identifier: MIT
// vfiobox's public API: re-exports only.

export type { PluginDeviceModel, PluginDeviceOptions } from './device/model.js';
export { createPluginDevice } from './device/model.js';
// Devices: the model transports drive, and the harness (host/device/, host/harness/)
export type { DeviceModel, DeviceStats } from './device/types.js';
export type { PluginErrorKind, VfioErrorInit } from './errors.js';
export {
  ConfigError,
  errnoName,
  errnoValue,
  PluginError,
  ProtocolError,
  VfioError,
} from './errors.js';
export type { Harness, HarnessOptions } from './harness/harness.js';
export { createHarness, recordTrace, replayTrace } from './harness/harness.js';
export type { TraceEvent } from './harness/trace.js';
export { formatTrace, parseTrace } from './harness/trace.js';
export { VirtualClock } from './harness/virtual-clock.js';
export type { IdEntry, IdTable, MatchResult, PciIds } from './match.js';
export { countWildcards, matchIdTable, PCI_ANY_ID } from './match.js';
export { readAbi, SUPPORTED_ABI } from './plugins/abi.js';
// Plugins: engines, ABI, manifests, grants (host/plugins/)
export type {
  AbiVersion,
  CompiledPlugin,
  DeviceDescription,
  Engine,
  EngineName,
  HostImports,
  InstanceLimits,
  PluginInstance,
} from './plugins/engine.js';
export { WitError } from './plugins/engine.js';
export { ENGINE_NAMES, engineByName } from './plugins/engines/index.js';
export { v8Engine } from './plugins/engines/v8.js';
export { wasmtimeEngine } from './plugins/engines/wasmtime.js';
export type { Grant } from './plugins/grants.js';
export { applyGrants, grantFromManifest } from './plugins/grants.js';
export type { LoadedPlugin, LoadOptions } from './plugins/loader.js';
export { loadPlugin } from './plugins/loader.js';
export type { Manifest } from './plugins/manifest.js';
export { parseManifest, readManifest } from './plugins/manifest.js';
export type { Policy } from './plugins/policy.js';
export { loadPolicy, parsePolicy } from './plugins/policy.js';
export type { RunningDevice } from './serve/device-runtime.js';
export { startDevice } from './serve/device-runtime.js';
// Serving: one device per worker, watched (host/serve/)
export type { DeviceSpec, ServeEvent } from './serve/spec.js';
export { DeviceSupervisor } from './serve/supervisor.js';
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
export type { RegionInfo as VfioUserRegionInfo } from './vfio-user/client.js';
export { dma, VfioUserClient } from './vfio-user/client.js';
export * as vfioUserProtocol from './vfio-user/protocol.js';
// vfio-user: server, client, codec (host/vfio-user/)
export type { VfioUserServerOptions } from './vfio-user/server.js';
export { VfioUserServer } from './vfio-user/server.js';

// SPDX-License-Identifier: MIT
// PCI discovery from sysfs (Documentation/ABI/testing/sysfs-bus-pci in the kernel tree), IOMMU
// group viability and the VFIO facts a user needs before opening a device.
//
// Every path is resolved under an injectable root: `opts.root`, else $VFIOBOX_SYSFS_ROOT, else '/'.
// Tests point it at a fake tree in a temp dir (test/helpers/fake-sysfs.ts). Paths this module
// returns (`/dev/vfio/7`, `/dev/vfio/devices/vfio0`) are always the real ones, without the root.

import { access, readdir, readFile, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { ConfigError, errnoValue, VfioError } from '../errors.js';
import { createLogger } from '../log.js';

const log = createLogger('sysfs');

export const PCI_DEVICES_DIR = '/sys/bus/pci/devices';
export const PCI_DRIVERS_DIR = '/sys/bus/pci/drivers';
export const IOMMU_GROUPS_DIR = '/sys/kernel/iommu_groups';
const NOIOMMU_PARAM = '/sys/module/vfio/parameters/enable_unsafe_noiommu_mode';
/** The name the vfio-pci driver registers under (drivers/vfio/pci/vfio_pci.c). */
export const VFIO_PCI_DRIVER = 'vfio-pci';

export interface SysfsOptions {
  /** directory that stands in for '/'; default $VFIOBOX_SYSFS_ROOT or '/' */
  root?: string | undefined;
}

/** One PCI function as sysfs describes it. */
export interface PciDevice {
  /** normalised `dddd:bb:dd.f`, lower case */
  bdf: string;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemDeviceId: number;
  /** 24 bits: base class << 16 | subclass << 8 | programming interface */
  classCode: number;
  revision: number;
  /** bound driver's name, or null when unbound */
  driver: string | null;
  iommuGroup: number | null;
  /** `/dev/vfio/devices/vfioN` when the kernel created a VFIO cdev for it (iommufd path) */
  cdev: string | null;
  /** from `reset_method` (e.g. ['flr', 'bus']); [] when the file is absent or empty */
  resetMethods: string[];
  /** NUMA node, or null when the kernel reports none (-1) or the file is absent */
  numaNode: number | null;
  /** true when its group is a VFIO no-IOMMU group (`/dev/vfio/noiommu-N`) */
  noiommu: boolean;
}

/** The root directory used for sysfs and /dev lookups. */
export function sysfsRoot(opts?: SysfsOptions): string {
  return opts?.root || process.env.VFIOBOX_SYSFS_ROOT || '/';
}

/** `path` (a real absolute path such as '/sys/bus/pci') resolved under the root. */
export function underRoot(root: string, path: string): string {
  return join(root, path);
}

// ---------------------------------------------------------------------------------------------
// PCI addresses

const BDF_RE = /^(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;

/** The normalised form of a PCI address, or null when `input` is not one. */
export function tryParseBdf(input: string): string | null {
  const m = BDF_RE.exec(input.trim());
  if (!m) return null;
  const [, domain = '0000', bus = '', device = '', fn = ''] = m;
  // A device number has 5 bits (PCI Local Bus spec, type 0 configuration address).
  if (Number.parseInt(device, 16) > 0x1f) return null;
  return `${domain.padStart(4, '0')}:${bus}:${device}.${fn}`.toLowerCase();
}

/**
 * Normalises `00:04.0` and `0000:00:04.0` to `0000:00:04.0`.
 * @throws ConfigError ERR_VFIO_BAD_BDF naming the input when it is not a PCI address.
 */
export function parseBdf(input: string): string {
  const bdf = tryParseBdf(input);
  if (bdf === null) {
    throw new ConfigError(
      'ERR_VFIO_BAD_BDF',
      `${JSON.stringify(input)} is not a PCI address`,
      'expected [domain:]bus:device.function, e.g. 0000:00:04.0 or 00:04.0',
    );
  }
  return bdf;
}

// ---------------------------------------------------------------------------------------------
// Small sysfs readers. ENOENT means "absent"; anything else is a VfioError naming the path.

interface FsError {
  code?: string;
  errno?: number;
}

function fsCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as FsError).code : undefined;
}

/** strerror's text for a positive errno ('permission denied'), from libuv's table. */
export function errnoText(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[1] ?? `errno ${errno}`;
}

/** Whether `err` carries a system error code (`ENOENT`...), as Node's fs errors do. */
export function isSystemError(err: unknown): err is FsError {
  const code = fsCode(err);
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/**
 * Converts a Node fs error into a VfioError (`op` e.g. 'sysfs:read', positive errno). Anything
 * that is not a system error (a bug) is returned unchanged, so it keeps its type and stack.
 */
export function sysfsError(op: string, err: unknown, detail: Record<string, unknown>): unknown {
  if (err instanceof VfioError || !isSystemError(err)) return err;
  const code = err.code ?? 'EIO';
  const errno = errnoValue(code) ?? Math.abs(err.errno ?? 5);
  return new VfioError({ op, errno, code, message: errnoText(errno), detail });
}

const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

async function readAttr(root: string, path: string): Promise<string | null> {
  try {
    return (await readFile(underRoot(root, path), 'utf8')).trim();
  } catch (err) {
    if (ABSENT.has(fsCode(err) ?? '')) return null;
    throw sysfsError('sysfs:read', err, { path });
  }
}

/** The last component of a symlink's target (driver and iommu_group links), or null. */
export async function readLinkName(root: string, path: string): Promise<string | null> {
  try {
    return basename(await readlink(underRoot(root, path)));
  } catch (err) {
    if (ABSENT.has(fsCode(err) ?? '') || fsCode(err) === 'EINVAL') return null;
    throw sysfsError('sysfs:readlink', err, { path });
  }
}

async function listDir(root: string, path: string): Promise<string[] | null> {
  try {
    return (await readdir(underRoot(root, path))).sort();
  } catch (err) {
    if (ABSENT.has(fsCode(err) ?? '')) return null;
    throw sysfsError('sysfs:readdir', err, { path });
  }
}

/** Whether `path` (a real path such as '/dev/vfio/vfio') exists under the root. */
export async function pathExists(root: string, path: string): Promise<boolean> {
  try {
    await access(underRoot(root, path));
    return true;
  } catch (err) {
    if (ABSENT.has(fsCode(err) ?? '')) return false;
    throw sysfsError('access', err, { path });
  }
}

function parseHex(text: string, path: string): number {
  if (!/^0x[0-9a-f]+$/i.test(text)) {
    throw new VfioError({
      op: 'sysfs:read',
      errno: errnoValue('EIO') ?? 5,
      code: 'ERR_VFIO_SYSFS_FORMAT',
      message: `unexpected content ${JSON.stringify(text)}`,
      detail: { path },
    });
  }
  return Number.parseInt(text, 16);
}

async function readHex(root: string, path: string, fallback?: number): Promise<number> {
  const text = await readAttr(root, path);
  if (text !== null) return parseHex(text, path);
  if (fallback !== undefined) return fallback;
  throw sysfsError('sysfs:read', { code: 'ENOENT' }, { path });
}

// ---------------------------------------------------------------------------------------------
// Devices

async function readCdev(root: string, dir: string): Promise<string | null> {
  // The vfio_device cdev appears as <dev>/vfio-dev/vfioN (drivers/vfio/device_cdev.c).
  const names = (await listDir(root, `${dir}/vfio-dev`)) ?? [];
  const name = names.find((n) => /^vfio\d+$/.test(n));
  return name === undefined ? null : `/dev/vfio/devices/${name}`;
}

async function isNoiommuGroup(root: string, group: number): Promise<boolean> {
  // vfio_noiommu_group_alloc() (drivers/vfio/group.c) names the fake group "vfio-noiommu" and
  // the group node is /dev/vfio/noiommu-N; either is proof.
  if (await pathExists(root, `/dev/vfio/noiommu-${group}`)) return true;
  return (await readAttr(root, `${IOMMU_GROUPS_DIR}/${group}/name`)) === 'vfio-noiommu';
}

async function readDevice(root: string, bdf: string): Promise<PciDevice | null> {
  const dir = `${PCI_DEVICES_DIR}/${bdf}`;
  const vendor = await readAttr(root, `${dir}/vendor`);
  if (vendor === null) return null; // hot-unplugged between readdir and now
  const [deviceId, subsystemVendorId, subsystemDeviceId, classCode, revision] = await Promise.all([
    readHex(root, `${dir}/device`),
    readHex(root, `${dir}/subsystem_vendor`, 0),
    readHex(root, `${dir}/subsystem_device`, 0),
    readHex(root, `${dir}/class`),
    readHex(root, `${dir}/revision`, 0),
  ]);
  const [driver, groupName, cdev, reset, numa] = await Promise.all([
    readLinkName(root, `${dir}/driver`),
    readLinkName(root, `${dir}/iommu_group`),
    readCdev(root, dir),
    readAttr(root, `${dir}/reset_method`),
    readAttr(root, `${dir}/numa_node`),
  ]);
  const iommuGroup = groupName !== null && /^\d+$/.test(groupName) ? Number(groupName) : null;
  const numaNode = numa !== null && /^\d+$/.test(numa) ? Number(numa) : null;
  return {
    bdf,
    vendorId: parseHex(vendor, `${dir}/vendor`),
    deviceId,
    subsystemVendorId,
    subsystemDeviceId,
    classCode: classCode & 0xffffff,
    revision,
    driver,
    iommuGroup,
    cdev,
    resetMethods: reset ? reset.split(/\s+/) : [],
    numaNode,
    noiommu: iommuGroup !== null && (await isNoiommuGroup(root, iommuGroup)),
  };
}

/** Every PCI function under /sys/bus/pci/devices, sorted by address; [] when there is no PCI. */
export async function listPciDevices(opts?: SysfsOptions): Promise<PciDevice[]> {
  const root = sysfsRoot(opts);
  const names = (await listDir(root, PCI_DEVICES_DIR)) ?? [];
  const bdfs = names.filter((n) => tryParseBdf(n) === n);
  log('list: %d devices under %s', bdfs.length, root);
  const devices = await Promise.all(bdfs.map((bdf) => readDevice(root, bdf)));
  return devices.filter((d): d is PciDevice => d !== null);
}

function noSuchDevice(bdf: string): ConfigError {
  return new ConfigError('ERR_VFIO_NO_DEVICE', `no PCI device ${bdf}`, 'check `vfiobox list`');
}

/**
 * One device by address (either form).
 * @throws ConfigError ERR_VFIO_BAD_BDF or ERR_VFIO_NO_DEVICE
 */
export async function getPciDevice(bdf: string, opts?: SysfsOptions): Promise<PciDevice> {
  const address = parseBdf(bdf);
  const device = await readDevice(sysfsRoot(opts), address);
  if (device === null) throw noSuchDevice(address);
  return device;
}

// ---------------------------------------------------------------------------------------------
// IOMMU groups

function checkGroup(group: number): void {
  if (!Number.isSafeInteger(group) || group < 0) {
    throw new RangeError(`group: expected a non-negative integer, received ${String(group)}`);
  }
}

/**
 * The device names in /sys/kernel/iommu_groups/<group>/devices, sorted.
 * @throws ConfigError ERR_VFIO_NO_GROUP when the group does not exist
 */
export async function groupDevices(group: number, opts?: SysfsOptions): Promise<string[]> {
  checkGroup(group);
  const names = await listDir(sysfsRoot(opts), `${IOMMU_GROUPS_DIR}/${group}/devices`);
  if (names === null) {
    throw new ConfigError(
      'ERR_VFIO_NO_GROUP',
      `no IOMMU group ${group}`,
      'see the GROUP column of `vfiobox list`',
    );
  }
  return names;
}

/**
 * Drivers that set `driver_managed_dma` in their struct pci_driver, so binding them does not make
 * the kernel own the group's DMA: pci-stub (drivers/pci/pci-stub.c) and pcieport
 * (drivers/pci/pcie/portdrv.c, bridges), plus vfio-pci itself. Variant drivers built on
 * vfio_pci_core (mlx5_vfio_pci, hisi_acc_vfio_pci, xe-vfio-pci, ...) set it too; they are
 * recognised by the name suffix in driverAllowedInUserGroup().
 */
export const DMA_SAFE_DRIVERS: ReadonlySet<string> = new Set([
  VFIO_PCI_DRIVER,
  'pci-stub',
  'pcieport',
]);

/**
 * The kernel's viability rule for one device of a group handed to userspace.
 *
 * Since Linux 5.19 (commit "vfio: Set DMA ownership for VFIO devices") VFIO takes a group with
 * iommu_group_claim_dma_owner() (drivers/iommu/iommu.c): from vfio_container_attach_group() in
 * drivers/vfio/container.c on VFIO_GROUP_SET_CONTAINER (drivers/vfio/group.c: with iommufd the
 * claim moves to VFIO_GROUP_GET_DEVICE_FD), and for a cdev from vfio_df_open() in
 * drivers/vfio/vfio_main.c through iommufd_device_bind(). The claim fails while any device of
 * the group is bound to a driver that uses the kernel DMA API, which pci_dma_configure()
 * (drivers/pci/pci-driver.c) records for every driver without `driver_managed_dma`.
 * So a device is fine when it has no driver, or its driver is one of DMA_SAFE_DRIVERS or a
 * vfio-pci variant. Kernels before 5.19 (vfio_dev_viable() in drivers/vfio/vfio.c) also allowed
 * any bridge driver; we follow the current, stricter rule.
 */
export function driverAllowedInUserGroup(driver: string | null): boolean {
  if (driver === null || DMA_SAFE_DRIVERS.has(driver)) return true;
  return /[-_]vfio[-_]pci$/.test(driver);
}

export interface GroupBlocker {
  bdf: string;
  driver: string;
}

export interface GroupViability {
  group: number;
  viable: boolean;
  /** devices bound to a driver that keeps the group from userspace (empty when viable) */
  blockers: GroupBlocker[];
}

/** Whether VFIO would accept the group now; see driverAllowedInUserGroup() for the rule. */
export async function groupViability(group: number, opts?: SysfsOptions): Promise<GroupViability> {
  const root = sysfsRoot(opts);
  const names = await groupDevices(group, opts);
  const drivers = await Promise.all(
    names.map((n) => readLinkName(root, `${IOMMU_GROUPS_DIR}/${group}/devices/${n}/driver`)),
  );
  const blockers: GroupBlocker[] = [];
  names.forEach((bdf, i) => {
    const driver = drivers[i] ?? null;
    if (!driverAllowedInUserGroup(driver)) blockers.push({ bdf, driver: driver ?? '' });
  });
  log('group %d: %d devices, %d blockers', group, names.length, blockers.length);
  return { group, viable: blockers.length === 0, blockers };
}

/** The error for a non-viable group: names each blocker and the command that fixes it. */
export function groupNotViableError(v: GroupViability): ConfigError {
  const list = v.blockers.map((b) => `${b.bdf} (${b.driver})`).join(', ');
  const bdfs = v.blockers.map((b) => b.bdf).join(' ');
  return new ConfigError(
    'ERR_VFIO_GROUP_NOT_VIABLE',
    `IOMMU group ${v.group} is not viable: ${list} ${v.blockers.length > 1 ? 'are' : 'is'} bound to a host driver`,
    `bind them to vfio-pci too: vfiobox bind ${bdfs}`,
  );
}

// ---------------------------------------------------------------------------------------------
// VFIO device nodes and facts

export function noGroupError(bdf: string): ConfigError {
  return new ConfigError(
    'ERR_VFIO_NO_GROUP',
    `${bdf} has no IOMMU group`,
    `bind it to vfio-pci first (vfiobox bind ${bdf}); without an IOMMU that needs no-IOMMU mode`,
  );
}

/**
 * The legacy group node for a device: `/dev/vfio/N`, or `/dev/vfio/noiommu-N` for a no-IOMMU
 * group (drivers/vfio/group.c names the node after the group id, with the "noiommu-" prefix).
 */
export function groupPath(dev: Pick<PciDevice, 'bdf' | 'iommuGroup' | 'noiommu'>): string {
  if (dev.iommuGroup === null) throw noGroupError(dev.bdf);
  return dev.noiommu ? `/dev/vfio/noiommu-${dev.iommuGroup}` : `/dev/vfio/${dev.iommuGroup}`;
}

/** What the running kernel offers for VFIO. */
export interface VfioFacts {
  /** /dev/vfio/vfio: the legacy container (CONFIG_VFIO_CONTAINER, vfio loaded) */
  vfioContainer: boolean;
  /** /dev/iommu: iommufd, which VFIO cdevs attach to */
  iommufd: boolean;
  /** vfio's enable_unsafe_noiommu_mode parameter reads Y */
  noiommuEnabled: boolean;
  /** /sys/bus/pci/drivers/vfio-pci exists (the module is loaded) */
  vfioPciDriver: boolean;
}

export async function vfioAvailable(opts?: SysfsOptions): Promise<VfioFacts> {
  const root = sysfsRoot(opts);
  const [vfioContainer, iommufd, noiommu, vfioPciDriver] = await Promise.all([
    pathExists(root, '/dev/vfio/vfio'),
    pathExists(root, '/dev/iommu'),
    readAttr(root, NOIOMMU_PARAM),
    pathExists(root, `${PCI_DRIVERS_DIR}/${VFIO_PCI_DRIVER}`),
  ]);
  return { vfioContainer, iommufd, noiommuEnabled: noiommu === 'Y', vfioPciDriver };
}

export const NOIOMMU_HINT =
  'enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line), or for testing ' +
  `only: echo Y > ${NOIOMMU_PARAM}`;
export const MODPROBE_HINT = 'load vfio-pci (modprobe vfio-pci)';

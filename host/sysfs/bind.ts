// SPDX-License-Identifier: MIT
// Binding a PCI device to vfio-pci and giving it back, through driver_override, the sequence in
// Documentation/ABI/testing/sysfs-bus-pci ("driver_override") and in the kernel's VFIO docs:
//   echo vfio-pci > /sys/bus/pci/devices/<bdf>/driver_override
//   echo <bdf>    > /sys/bus/pci/devices/<bdf>/driver/unbind      (if bound)
//   echo <bdf>    > /sys/bus/pci/drivers_probe
// driver_override (rather than vfio-pci's new_id) binds exactly this function and no other
// device that shares its ids.
//
// Every write goes through a SysfsWriter, the seam tests use to observe the writes and to emulate
// the kernel's reaction (moving the driver symlink).

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, errnoValue, VfioError } from '../errors.js';
import { createLogger } from '../log.js';
import {
  errnoText,
  MODPROBE_HINT,
  NOIOMMU_HINT,
  PCI_DEVICES_DIR,
  parseBdf,
  pathExists,
  readLinkName,
  type SysfsOptions,
  sysfsError,
  sysfsRoot,
  underRoot,
  VFIO_PCI_DRIVER,
  vfioAvailable,
} from './pci.js';

const log = createLogger('bind');
/** bus_rescan for one device: binds it to its override or best-matching driver */
const DRIVERS_PROBE = '/sys/bus/pci/drivers_probe';

/** Writes one sysfs attribute. `path` is the real path ('/sys/bus/pci/drivers_probe'). */
export interface SysfsWriter {
  write(path: string, data: string): Promise<void>;
}

/**
 * The real writer: one write(2) on an O_WRONLY open, resolved under `root`. Neither O_CREAT nor
 * O_RDWR: sysfs cannot create files, and kernfs refuses a read open of write-only attributes
 * such as `unbind` (kernfs_fop_open()).
 */
export function fileWriter(root: string): SysfsWriter {
  return {
    async write(path, data) {
      const handle = await open(underRoot(root, path), constants.O_WRONLY);
      try {
        await handle.write(data);
      } finally {
        await handle.close();
      }
    },
  };
}

export interface BindOptions extends SysfsOptions {
  /** default: fileWriter(root) */
  writer?: SysfsWriter | undefined;
  /** how long to wait for the driver link to change after drivers_probe; default 1000 */
  verifyTimeoutMs?: number | undefined;
}

export interface BindResult {
  bdf: string;
  /** the driver before the call, or null */
  previousDriver: string | null;
  /** the driver after the call, or null */
  driver: string | null;
  /** false when nothing had to be done */
  changed: boolean;
}

interface Context {
  root: string;
  writer: SysfsWriter;
  bdf: string;
  dir: string;
  verifyTimeoutMs: number;
}

async function context(bdf: string, opts: BindOptions | undefined): Promise<Context> {
  const address = parseBdf(bdf);
  const root = sysfsRoot(opts);
  const dir = `${PCI_DEVICES_DIR}/${address}`;
  if (!(await pathExists(root, dir))) {
    throw new ConfigError('ERR_VFIO_NO_DEVICE', `no PCI device ${address}`, 'check `vfiobox list`');
  }
  return {
    root,
    writer: opts?.writer ?? fileWriter(root),
    bdf: address,
    dir,
    verifyTimeoutMs: opts?.verifyTimeoutMs ?? 1000,
  };
}

/** The error for a failed write: a VfioError, or a ConfigError for the cases a user can fix. */
function writeError(err: unknown, path: string, bdf: string): unknown {
  const failure = sysfsError('sysfs:write', err, { path, bdf });
  if (!(failure instanceof VfioError)) return failure;
  const reason = `cannot write ${path}: ${errnoText(failure.errno)} (${failure.code})`;
  let translated: ConfigError | undefined;
  if (failure.code === 'EACCES' || failure.code === 'EPERM') {
    translated = new ConfigError('ERR_VFIO_NOT_ROOT', reason, 'needs root: run with sudo');
  } else if (failure.code === 'EROFS') {
    translated = new ConfigError(
      'ERR_VFIO_SYSFS_READONLY',
      reason,
      'sysfs is mounted read-only here (a container?): bind on the host',
    );
  }
  if (!translated) return failure;
  translated.cause = failure;
  return translated;
}

async function write(ctx: Context, path: string, data: string): Promise<void> {
  log('%s: write %j to %s', ctx.bdf, data, path);
  try {
    await ctx.writer.write(path, data);
  } catch (err) {
    throw writeError(err, path, ctx.bdf);
  }
}

function currentDriver(ctx: Context): Promise<string | null> {
  return readLinkName(ctx.root, `${ctx.dir}/driver`);
}

/** Polls the driver link until `want(driver)` holds or the timeout passes; returns the last value. */
async function settle(
  ctx: Context,
  want: (d: string | null) => boolean,
  timeoutMs = ctx.verifyTimeoutMs,
): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const driver = await currentDriver(ctx);
    if (want(driver) || Date.now() >= deadline) return driver;
    await sleep(20);
  }
}

/**
 * Binds `bdf` to vfio-pci: driver_override, unbind from the current driver, drivers_probe, then
 * checks that the driver link points at vfio-pci. Does nothing if it already does.
 * @throws ConfigError for an unknown address, missing vfio-pci, missing privileges;
 *         VfioError op 'sysfs:write' for other failed writes, and code ERR_VFIO_BIND_FAILED when
 *         the kernel did not bind it (dmesg says why; often no IOMMU group).
 */
export async function bindToVfio(bdf: string, opts?: BindOptions): Promise<BindResult> {
  const ctx = await context(bdf, opts);
  const facts = await vfioAvailable(opts);
  if (!facts.vfioPciDriver) {
    throw new ConfigError(
      'ERR_VFIO_NO_VFIO_PCI',
      'the vfio-pci driver is not loaded',
      MODPROBE_HINT,
    );
  }
  const previousDriver = await currentDriver(ctx);
  if (previousDriver === VFIO_PCI_DRIVER) {
    return { bdf: ctx.bdf, previousDriver, driver: previousDriver, changed: false };
  }
  const hasGroup = (await readLinkName(ctx.root, `${ctx.dir}/iommu_group`)) !== null;
  if (!hasGroup && !facts.noiommuEnabled) {
    // vfio-pci's probe fails without a group (vfio_group_find_or_alloc() in drivers/vfio/group.c
    // only fakes one in no-IOMMU mode), so say why before unbinding the host driver.
    throw new ConfigError(
      'ERR_VFIO_NOIOMMU_DISABLED',
      `${ctx.bdf} has no IOMMU group and no-IOMMU mode is not enabled`,
      NOIOMMU_HINT,
    );
  }
  await write(ctx, `${ctx.dir}/driver_override`, VFIO_PCI_DRIVER);
  if (previousDriver !== null) await write(ctx, `${ctx.dir}/driver/unbind`, ctx.bdf);
  await write(ctx, DRIVERS_PROBE, ctx.bdf);
  const driver = await settle(ctx, (d) => d === VFIO_PCI_DRIVER);
  if (driver !== VFIO_PCI_DRIVER) {
    throw new VfioError({
      op: 'sysfs:bind',
      errno: errnoValue('ENODEV') ?? 19,
      code: 'ERR_VFIO_BIND_FAILED',
      message: `vfio-pci did not bind ${ctx.bdf}, its driver is ${driver ?? 'none'}`,
      detail: { bdf: ctx.bdf, previousDriver: previousDriver ?? 'none' },
    });
  }
  log('%s: %s -> vfio-pci', ctx.bdf, previousDriver ?? 'none');
  return { bdf: ctx.bdf, previousDriver, driver, changed: true };
}

/**
 * Gives `bdf` back to the host: unbind from its driver, clear driver_override (a lone newline
 * clears it, see driver_set_override() in drivers/base/driver.c), and drivers_probe so the
 * default driver (if any) reclaims it. The result's `driver` is whatever bound, maybe null.
 */
export async function unbind(bdf: string, opts?: BindOptions): Promise<BindResult> {
  const ctx = await context(bdf, opts);
  const previousDriver = await currentDriver(ctx);
  if (previousDriver !== null) await write(ctx, `${ctx.dir}/driver/unbind`, ctx.bdf);
  await write(ctx, `${ctx.dir}/driver_override`, '\n');
  await write(ctx, DRIVERS_PROBE, ctx.bdf);
  // Any driver other than the one we removed means the probe finished; none is also legitimate
  // (no host driver claims the device), so wait only briefly: PCI probes run synchronously
  // inside the drivers_probe write unless a driver asks for asynchronous probing.
  const timeoutMs = Math.min(ctx.verifyTimeoutMs, 250);
  const driver = await settle(ctx, (d) => d !== null && d !== previousDriver, timeoutMs);
  log('%s: %s -> %s', ctx.bdf, previousDriver ?? 'none', driver ?? 'none');
  return { bdf: ctx.bdf, previousDriver, driver, changed: previousDriver !== driver };
}

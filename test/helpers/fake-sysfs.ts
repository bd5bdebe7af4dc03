// SPDX-License-Identifier: MIT
// A fake sysfs + /dev tree in a temp dir, laid out like the kernel's:
//   sys/devices/pci0000:00/<bdf>/{vendor,device,...,driver ->, iommu_group ->, vfio-dev/vfioN}
//   sys/bus/pci/devices/<bdf> -> ../../../devices/pci0000:00/<bdf>
//   sys/bus/pci/drivers/<name>/{bind,unbind}, sys/bus/pci/drivers_probe
//   sys/kernel/iommu_groups/N/devices/<bdf> -> ../../../../devices/pci0000:00/<bdf>
//   sys/module/vfio/parameters/enable_unsafe_noiommu_mode, dev/vfio/{vfio,N,noiommu-N,devices/}
// plus `kernel`, a SysfsWriter that records writes and reacts to them as the kernel would
// (driver_override, unbind, drivers_probe), with injectable failures.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { SysfsWriter } from '../../host/sysfs/bind.js';

export interface FakeDevice {
  bdf: string;
  vendor: number;
  device: number;
  subVendor?: number;
  subDevice?: number;
  classCode?: number;
  revision?: number;
  driver?: string | null;
  group?: number | null;
  /** index N of vfio-dev/vfioN, created while bound to vfio-pci when set */
  cdev?: number | null;
  /** null: no reset_method file */
  resetMethods?: string[] | null;
  numaNode?: number;
  /** the group is a VFIO no-IOMMU group */
  noiommu?: boolean;
  /** what drivers_probe binds when there is no driver_override; default: none */
  defaultDriver?: string | null;
}

export interface FakeSysfsSpec {
  devices: FakeDevice[];
  /** registered PCI drivers; the devices' drivers are added automatically */
  drivers?: string[];
  /** default true: vfio-pci registered */
  vfioPci?: boolean;
  /** /dev/vfio/vfio; default true */
  vfioContainer?: boolean;
  /** /dev/iommu; default false */
  iommufd?: boolean;
  /** enable_unsafe_noiommu_mode: undefined = no vfio module, else Y/N */
  noiommuMode?: boolean;
}

export interface Write {
  path: string;
  data: string;
}

const DEVICES = 'sys/devices/pci0000:00';

function hexAttr(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, '0')}\n`;
}

function fsError(code: string, path: string): NodeJS.ErrnoException {
  const errno = (constants.errno as Record<string, number>)[code] ?? 5;
  return Object.assign(new Error(`${code}: fake failure, write '${path}'`), {
    code,
    errno: -errno,
    syscall: 'write',
    path,
  });
}

export class FakeSysfs {
  readonly root: string;
  readonly writes: Write[] = [];
  readonly #devices = new Map<string, FakeDevice>();
  readonly #failures: Array<{ match: RegExp; code: string }> = [];

  constructor(spec: FakeSysfsSpec) {
    this.root = mkdtempSync(join(tmpdir(), 'vfiobox-sysfs-'));
    this.mkdir('sys/bus/pci/devices');
    this.file('sys/bus/pci/drivers_probe', '');
    const drivers = new Set(spec.drivers ?? []);
    if (spec.vfioPci ?? true) drivers.add('vfio-pci');
    for (const d of spec.devices) {
      if (d.driver) drivers.add(d.driver);
      if (d.defaultDriver) drivers.add(d.defaultDriver);
    }
    for (const name of drivers) this.addDriver(name);
    if (spec.vfioContainer ?? true) this.file('dev/vfio/vfio', '');
    if (spec.iommufd) this.file('dev/iommu', '');
    if (spec.noiommuMode !== undefined) {
      this.file(
        'sys/module/vfio/parameters/enable_unsafe_noiommu_mode',
        spec.noiommuMode ? 'Y\n' : 'N\n',
      );
    }
    for (const d of spec.devices) this.addDevice(d);
  }

  path(rel: string): string {
    return join(this.root, rel);
  }

  mkdir(rel: string): void {
    mkdirSync(this.path(rel), { recursive: true });
  }

  file(rel: string, content: string): void {
    mkdirSync(dirname(this.path(rel)), { recursive: true });
    writeFileSync(this.path(rel), content);
  }

  link(rel: string, target: string): void {
    mkdirSync(dirname(this.path(rel)), { recursive: true });
    if (existsSync(this.path(rel))) unlinkSync(this.path(rel));
    symlinkSync(target, this.path(rel));
  }

  remove(rel: string): void {
    rmSync(this.path(rel), { recursive: true, force: true });
  }

  addDriver(name: string): void {
    this.file(`sys/bus/pci/drivers/${name}/bind`, '');
    this.file(`sys/bus/pci/drivers/${name}/unbind`, '');
  }

  addDevice(d: FakeDevice): void {
    this.#devices.set(d.bdf, d);
    const dir = `${DEVICES}/${d.bdf}`;
    this.file(`${dir}/vendor`, hexAttr(d.vendor, 4));
    this.file(`${dir}/device`, hexAttr(d.device, 4));
    this.file(`${dir}/subsystem_vendor`, hexAttr(d.subVendor ?? 0, 4));
    this.file(`${dir}/subsystem_device`, hexAttr(d.subDevice ?? 0, 4));
    this.file(`${dir}/class`, hexAttr(d.classCode ?? 0, 6));
    this.file(`${dir}/revision`, hexAttr(d.revision ?? 0, 2));
    this.file(`${dir}/numa_node`, `${d.numaNode ?? -1}\n`);
    this.file(`${dir}/driver_override`, '(null)\n');
    if (d.resetMethods !== null)
      this.file(`${dir}/reset_method`, `${(d.resetMethods ?? []).join(' ')}\n`);
    this.link(`sys/bus/pci/devices/${d.bdf}`, `../../../devices/pci0000:00/${d.bdf}`);
    if (d.group !== undefined && d.group !== null)
      this.addToGroup(d.bdf, d.group, d.noiommu ?? false);
    this.setDriver(d.bdf, d.driver ?? null);
  }

  addToGroup(bdf: string, group: number, noiommu: boolean): void {
    this.link(`${DEVICES}/${bdf}/iommu_group`, `../../../kernel/iommu_groups/${group}`);
    this.link(
      `sys/kernel/iommu_groups/${group}/devices/${bdf}`,
      `../../../../devices/pci0000:00/${bdf}`,
    );
    if (noiommu) this.file(`sys/kernel/iommu_groups/${group}/name`, 'vfio-noiommu\n');
  }

  /** Moves the driver link as the kernel's bind/unbind would, with vfio-pci's side effects. */
  setDriver(bdf: string, driver: string | null): void {
    const d = this.#devices.get(bdf);
    const dir = `${DEVICES}/${bdf}`;
    this.remove(`${dir}/driver`);
    this.remove(`${dir}/vfio-dev`);
    if (driver === null) return;
    this.link(`${dir}/driver`, `../../../bus/pci/drivers/${driver}`);
    if (driver !== 'vfio-pci' || !d) return;
    if (d.group !== undefined && d.group !== null) {
      this.file(`dev/vfio/${d.noiommu ? 'noiommu-' : ''}${d.group}`, '');
    }
    if (d.cdev !== undefined && d.cdev !== null) {
      this.mkdir(`${dir}/vfio-dev/vfio${d.cdev}`);
      this.file(`dev/vfio/devices/vfio${d.cdev}`, '');
    }
  }

  driverOf(bdf: string): string | null {
    try {
      return basename(readlinkSync(this.path(`${DEVICES}/${bdf}/driver`)));
    } catch {
      return null;
    }
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), 'utf8');
  }

  /** The next writes to paths matching `match` fail with `code` (EACCES, EROFS...). */
  failWrites(match: RegExp, code: string): void {
    this.#failures.push({ match, code });
  }

  /** A writer that records and emulates; with `react: false` it only writes the files. */
  writer(react = true): SysfsWriter {
    return {
      write: async (path, data) => {
        const failure = this.#failures.find((f) => f.match.test(path));
        if (failure) throw fsError(failure.code, path);
        if (!existsSync(this.path(path))) throw fsError('ENOENT', path);
        this.writes.push({ path, data });
        writeFileSync(this.path(path), data);
        if (react) this.#react(path, data);
      },
    };
  }

  #react(path: string, data: string): void {
    let m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/driver_override$/.exec(path);
    if (m?.[1]) {
      const value = data.trim();
      this.file(`${DEVICES}/${m[1]}/driver_override`, `${value === '' ? '(null)' : value}\n`);
      return;
    }
    m = /^\/sys\/bus\/pci\/(?:devices\/([^/]+)\/driver|drivers\/[^/]+)\/unbind$/.exec(path);
    if (m) {
      this.setDriver(data.trim(), null);
      return;
    }
    if (path === '/sys/bus/pci/drivers_probe') this.#probe(data.trim());
  }

  #probe(bdf: string): void {
    const d = this.#devices.get(bdf);
    if (!d || this.driverOf(bdf) !== null) return;
    const override = this.read(`${DEVICES}/${bdf}/driver_override`).trim();
    const wanted = override !== '(null)' ? override : (d.defaultDriver ?? null);
    if (wanted === null || !existsSync(this.path(`sys/bus/pci/drivers/${wanted}`))) return;
    // vfio-pci's probe fails for a device without an IOMMU group (no-IOMMU mode would add one).
    if (wanted === 'vfio-pci' && (d.group === undefined || d.group === null)) return;
    this.setDriver(bdf, wanted);
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A fresh fake tree; call cleanup() when done. */
export function createFakeSysfs(spec: FakeSysfsSpec): FakeSysfs {
  return new FakeSysfs(spec);
}

/** A small realistic machine: a NIC and its audio sibling sharing group 7, an NVMe alone. */
export function sampleMachine(overrides: Partial<FakeSysfsSpec> = {}): FakeSysfs {
  return createFakeSysfs({
    devices: [
      {
        bdf: '0000:00:00.0',
        vendor: 0x8086,
        device: 0x29c0,
        classCode: 0x060000,
        driver: null,
        group: 0,
      },
      {
        bdf: '0000:00:1c.0',
        vendor: 0x8086,
        device: 0xa110,
        classCode: 0x060400,
        driver: 'pcieport',
        group: 7,
        resetMethods: [],
      },
      {
        bdf: '0000:01:00.0',
        vendor: 0x8086,
        device: 0x10d3,
        subVendor: 0x8086,
        subDevice: 0xa01f,
        classCode: 0x020000,
        revision: 3,
        driver: 'e1000e',
        defaultDriver: 'e1000e',
        group: 7,
        cdev: 0,
        resetMethods: ['flr', 'bus'],
        numaNode: 0,
      },
      {
        bdf: '0000:01:00.1',
        vendor: 0x8086,
        device: 0x10d4,
        classCode: 0x040300,
        driver: 'snd_hda_intel',
        defaultDriver: 'snd_hda_intel',
        group: 7,
        cdev: 1,
        resetMethods: ['bus'],
      },
      {
        bdf: '0000:02:00.0',
        vendor: 0x144d,
        device: 0xa808,
        classCode: 0x010802,
        driver: 'vfio-pci',
        defaultDriver: 'nvme',
        group: 9,
        cdev: 2,
        resetMethods: ['flr'],
      },
    ],
    drivers: ['nvme'],
    noiommuMode: false,
    ...overrides,
  });
}

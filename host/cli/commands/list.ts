// SPDX-License-Identifier: MIT
// `vfiobox list`: every PCI function with what VFIO needs to know about it.

import { parseArgs } from 'node:util';
import {
  listPciDevices,
  MODPROBE_HINT,
  NOIOMMU_HINT,
  type PciDevice,
  type VfioFacts,
  vfioAvailable,
} from '../../sysfs/pci.js';
import { DEVICE_COLUMNS, deviceRow, formatTable } from '../format.js';
import type { CliIo, Command } from '../main.js';

/** Notes for a human at a terminal about why devices cannot be used yet. */
function notes(devices: readonly PciDevice[], facts: VfioFacts): string[] {
  const out: string[] = [];
  if (!facts.vfioPciDriver) out.push(`note: vfio-pci is not loaded: ${MODPROBE_HINT}`);
  const anyGroup = devices.some((d) => d.iommuGroup !== null);
  if (devices.length > 0 && !anyGroup && !facts.noiommuEnabled) {
    out.push(`note: no IOMMU groups and no-IOMMU mode is off: ${NOIOMMU_HINT}`);
  }
  return out;
}

export const listCommand: Command = {
  name: 'list',
  summary: 'list PCI devices with their driver, IOMMU group and VFIO nodes',
  usage: `usage: vfiobox list [--json]

Lists every PCI function: address, vendor:device, class, bound driver, IOMMU group
("noiommu-N" for a no-IOMMU group), VFIO cdev and reset methods. Needs no privileges.

options:
  --json      print an array of device records instead of a table
  -h, --help  show this help
`,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args,
      options: { json: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    });
    const devices = await listPciDevices(io.sysfs);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(devices, null, 2)}\n`);
      return 0;
    }
    io.stdout.write(formatTable(DEVICE_COLUMNS, devices.map(deviceRow)));
    if (io.isTTY) {
      for (const note of notes(devices, await vfioAvailable(io.sysfs)))
        io.stderr.write(`${note}\n`);
    }
    return 0;
  },
};

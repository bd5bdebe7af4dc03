// SPDX-License-Identifier: MIT
// `vfiobox bind <bdf>...`: hand devices to vfio-pci, then check that VFIO can open them.

import { parseArgs } from 'node:util';
import { bindToVfio } from '../../sysfs/bind.js';
import { parseBdf } from '../../sysfs/pci.js';
import { checkVfioReady } from '../../vfio/ready.js';
import { usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

/** Parses every address before anything changes, so a typo in the third one binds nothing. */
export function parseBdfArgs(command: string, positionals: readonly string[]): string[] {
  if (positionals.length === 0) {
    throw usageError(
      `${command} needs at least one PCI address`,
      `usage: vfiobox ${command} <bdf>...`,
    );
  }
  return [...new Set(positionals.map(parseBdf))];
}

export const bindCommand: Command = {
  name: 'bind',
  summary: 'bind PCI devices to vfio-pci (needs root)',
  usage: `usage: vfiobox bind <bdf>...

Binds each device to vfio-pci through driver_override, then checks that VFIO can open it:
vfio-pci loaded, a VFIO node (/dev/vfio/vfio or /dev/iommu with a cdev), and a viable
IOMMU group. A group is viable when every device in it is unbound or bound to vfio-pci,
a vfio-pci variant driver, pci-stub or pcieport (bridges); bind the others in the same call.
Addresses may omit the domain: 00:04.0 is 0000:00:04.0.

options:
  -h, --help  show this help
`,
  async run(args: string[], io: CliIo): Promise<number> {
    const { positionals } = parseArgs({ args, options: {}, strict: true, allowPositionals: true });
    const bdfs = parseBdfArgs('bind', positionals);
    for (const bdf of bdfs) {
      const r = await bindToVfio(bdf, io.sysfs);
      const change = r.changed
        ? `${r.previousDriver ?? 'no driver'} -> vfio-pci`
        : 'already vfio-pci';
      io.stdout.write(`${r.bdf}: ${change}\n`);
    }
    // Checked after all binds: devices of one group become viable together.
    for (const bdf of bdfs) {
      const ready = await checkVfioReady(bdf, io.sysfs);
      const node = ready.cdevPath ?? ready.groupPath ?? '';
      io.stdout.write(`${ready.device.bdf}: ready (${ready.kind}, ${node})\n`);
    }
    return 0;
  },
};

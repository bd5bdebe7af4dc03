// SPDX-License-Identifier: MIT
// `vfiobox unbind <bdf>...`: give devices back to the host's default driver.

import { parseArgs } from 'node:util';
import { unbind } from '../../sysfs/bind.js';
import type { CliIo, Command } from '../main.js';
import { parseBdfArgs } from './bind.js';

export const unbindCommand: Command = {
  name: 'unbind',
  summary: 'unbind PCI devices and let their host driver reclaim them (needs root)',
  usage: `usage: vfiobox unbind <bdf>...

Unbinds each device from its driver, clears driver_override and asks the kernel to probe it
again, so the default host driver (if any) binds it.

options:
  -h, --help  show this help
`,
  async run(args: string[], io: CliIo): Promise<number> {
    const { positionals } = parseArgs({ args, options: {}, strict: true, allowPositionals: true });
    for (const bdf of parseBdfArgs('unbind', positionals)) {
      const r = await unbind(bdf, io.sysfs);
      io.stdout.write(
        `${r.bdf}: ${r.previousDriver ?? 'no driver'} -> ${r.driver ?? 'no driver'}\n`,
      );
    }
    return 0;
  },
};

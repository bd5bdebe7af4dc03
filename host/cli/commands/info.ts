// SPDX-License-Identifier: MIT
// `vfiobox info <bdf>`: open a device through VFIO and show what the kernel says about it:
// device flags, every region (size, flags, capabilities) and every IRQ index.

import { parseArgs } from 'node:util';
import type { NativeIrqInfo, NativeRegionCap } from '../../native/types.js';
import type { RegionInfo } from '../../vfio/device.js';
import type { BackendRequest } from '../../vfio/iommu.js';
import { openDevice } from '../../vfio/open.js';
import * as uapi from '../../vfio/uapi.js';
import { formatTable, hex4, hex6 } from '../format.js';
import type { CliIo, Command } from '../main.js';
import { parseBdfArgs } from './bind.js';

const BACKENDS: readonly string[] = ['auto', 'legacy', 'iommufd', 'noiommu'];

function flagList(flags: number, names: Array<[number, string]>): string {
  const set = names.filter(([bit]) => flags & bit).map(([, n]) => n);
  return set.length ? set.join(',') : '-';
}

function capText(c: NativeRegionCap): string {
  switch (c.kind) {
    case 'sparse-mmap':
      return `sparse-mmap[${c.areas.map((a) => `0x${a.offset.toString(16)}+0x${a.sizeBytes.toString(16)}`).join(' ')}]`;
    case 'type':
      return `type ${c.type}/${c.subtype}`;
    case 'msix-mappable':
      return 'msix-mappable';
    case 'unknown':
      return `cap ${c.id} v${c.version}`;
  }
}

export function regionRows(regions: readonly RegionInfo[]): string[][] {
  return regions.map((r) => [
    `${r.index}`,
    r.name,
    `0x${r.sizeBytes.toString(16)}`,
    flagList(r.flags, [
      [uapi.VFIO_REGION_INFO_FLAG_READ, 'read'],
      [uapi.VFIO_REGION_INFO_FLAG_WRITE, 'write'],
      [uapi.VFIO_REGION_INFO_FLAG_MMAP, 'mmap'],
    ]),
    `0x${r.fdOffset.toString(16)}`,
    r.caps.length ? r.caps.map(capText).join('; ') : '-',
  ]);
}

export function irqRows(irqs: readonly NativeIrqInfo[]): string[][] {
  return irqs.map((q) => [
    `${q.index}`,
    uapi.VFIO_PCI_IRQ_NAMES[q.index] ?? `irq${q.index}`,
    `${q.count}`,
    flagList(q.flags, [
      [uapi.VFIO_IRQ_INFO_EVENTFD, 'eventfd'],
      [uapi.VFIO_IRQ_INFO_MASKABLE, 'maskable'],
      [uapi.VFIO_IRQ_INFO_AUTOMASKED, 'automasked'],
      [uapi.VFIO_IRQ_INFO_NORESIZE, 'noresize'],
    ]),
  ]);
}

export const infoCommand: Command = {
  name: 'info',
  summary: 'open a device through VFIO and show its regions, capabilities and IRQs (needs root)',
  usage: `usage: vfiobox info <bdf> [--backend auto|legacy|iommufd|noiommu] [--json]

Opens the device (it must be bound to vfio-pci: vfiobox bind <bdf>) and prints the kernel's
device info, every region with its size, flags and capability chain (sparse mmap areas, region
type, MSI-X mappable), and every IRQ index with its vector count and flags.

options:
  --backend B  IOMMU backend (default auto: iommufd when the device has a cdev, else legacy;
               noiommu is never chosen unless asked for)
  --json       print one JSON object
  -h, --help   show this help
`,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      options: {
        backend: { type: 'string', default: 'auto' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
    const [bdf] = parseBdfArgs('info', positionals);
    if (!BACKENDS.includes(values.backend)) {
      io.stderr.write(
        `vfiobox: --backend must be one of ${BACKENDS.join(', ')} (got ${values.backend})\n`,
      );
      return 2;
    }
    const backend = values.backend as BackendRequest;
    const { iommu, device } = await openDevice(bdf ?? '', {
      backend,
      allowNoiommu: backend === 'noiommu',
    });
    try {
      const info = device.info();
      const regions = device.regions();
      const irqs = device.irqs();
      const vendor = device.configRead(uapi.PCI_VENDOR_ID, 2);
      const dev = device.configRead(uapi.PCI_DEVICE_ID, 2);
      const classRev = device.configRead(uapi.PCI_CLASS_REVISION, 4);
      if (values.json) {
        const json = {
          bdf: device.bdf,
          backend: iommu.kind,
          vendor,
          device: dev,
          classCode: classRev >>> 8,
          info,
          regions,
          irqs,
        };
        io.stdout.write(
          `${JSON.stringify(json, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`,
        );
        return 0;
      }
      const flags = flagList(info.flags, [
        [uapi.VFIO_DEVICE_FLAGS_PCI, 'pci'],
        [uapi.VFIO_DEVICE_FLAGS_RESET, 'reset'],
      ]);
      io.stdout.write(
        `${device.bdf}  ${hex4(vendor)}:${hex4(dev)}  class ${hex6(classRev >>> 8)}  backend ${iommu.kind}  flags ${flags}\n\n`,
      );
      io.stdout.write(
        formatTable(
          ['#', 'REGION', 'SIZE', 'FLAGS', 'FD OFFSET', 'CAPABILITIES'],
          regionRows(regions),
        ),
      );
      io.stdout.write('\n');
      io.stdout.write(formatTable(['#', 'IRQ', 'COUNT', 'FLAGS'], irqRows(irqs)));
      return 0;
    } finally {
      device.close();
      iommu.close();
    }
  },
};

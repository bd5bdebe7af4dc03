// SPDX-License-Identifier: MIT
// QEMU's pci-testdev (1b36:0005): a second kind of device, with an I/O-port BAR that VFIO
// serves only through read()/write() on the device fd (never mmap).
// hw/misc/pci-testdev.c: each BAR holds a table of tests; writing a test number to byte 0
// selects one, and its header (test, width, pad[2], offset, data, count, name[]) reads back.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDevice, uapi } from '../../host/index.js';
import { labBackends, labDevices, TESTDEV_ID } from '../helpers/lab-env.js';

const TESTDEV_NAME_OFFSET = 16;
const testdev = labDevices().find((d) => d.id === TESTDEV_ID);

for (const backend of labBackends()) {
  const t = suite(`pci-testdev ${backend}`);

  t('the lab exposes a pci-testdev bound to vfio-pci', () => {
    assert.ok(testdev, 'no pci-testdev in VFIOLAB_DEV*');
  });

  t('lists its regions: an mmap-able MMIO BAR0 and a read/write-only I/O BAR1', async () => {
    const { iommu, device } = await openDevice(testdev?.bdf ?? '', {
      backend,
      allowNoiommu: backend === 'noiommu',
    });
    try {
      const names = device.regions().map((r) => r.name);
      assert.ok(
        names.includes('BAR0') && names.includes('BAR1') && names.includes('CONFIG'),
        names.join(),
      );
      assert.not.ok(names.includes('VGA'), 'VGA region listed for a non-VGA device');
      const bar0 = device.regionInfo(0);
      const bar1 = device.regionInfo(1);
      assert.ok(bar0.flags & uapi.VFIO_REGION_INFO_FLAG_MMAP);
      assert.is(bar1.flags & uapi.VFIO_REGION_INFO_FLAG_MMAP, 0, 'I/O BAR must not be mmap-able');
      assert.ok(
        bar1.flags & uapi.VFIO_REGION_INFO_FLAG_READ &&
          bar1.flags & uapi.VFIO_REGION_INFO_FLAG_WRITE,
      );
    } finally {
      device.close();
      iommu.close();
    }
  });

  t('the I/O-port BAR answers through read() and write(): test 0 has a name', async () => {
    const { iommu, device } = await openDevice(testdev?.bdf ?? '', {
      backend,
      allowNoiommu: backend === 'noiommu',
    });
    try {
      device.setCommandBits(uapi.PCI_COMMAND_IO | uapi.PCI_COMMAND_MEMORY);
      device.write(1, 0, 1, 0);
      const name =
        device.readBlock(1, TESTDEV_NAME_OFFSET, 16).toString('latin1').split('\0')[0] ?? '';
      assert.match(name, /^[a-z-]{3,}$/, `name ${JSON.stringify(name)}`);
      assert.throws(() => device.mmap(1), /not mmap-able/);
    } finally {
      device.close();
      iommu.close();
    }
  });

  t.run();
}

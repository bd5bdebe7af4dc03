// SPDX-License-Identifier: MIT
// Real-kernel robustness: no fd or mapping survives 1,000 open/close cycles or 10,000 DMA
// map/unmap pairs; a device open through one path refuses the other; an IOVA outside the
// kernel's valid ranges is refused before the ioctl, with the ranges in the message.

import { readdirSync, readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DmaBuffer, openDevice, openIommu, VfioError } from '../../host/index.js';
import { EDU_ID, labBackends, labDevices } from '../helpers/lab-env.js';

const fdCount = (): number => readdirSync('/proc/self/fd').length;
// Only VFIO mappings: V8's own heap mappings come and go as JS allocates.
const mapCount = (): number =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('vfio')).length;

async function caught(fn: () => unknown): Promise<VfioError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof VfioError) return err;
    throw err;
  }
  throw new Error('expected a VfioError, none was thrown');
}

const edu = labDevices().find((d) => d.id === EDU_ID);

for (const backend of labBackends()) {
  const t = suite(`robustness ${backend}`);
  const bdf = edu?.bdf ?? '';
  const allowNoiommu = backend === 'noiommu';

  t('the lab exposes an edu device bound to vfio-pci', () => {
    assert.ok(edu, 'no edu device in VFIOLAB_DEV*');
    assert.is(edu?.driver, 'vfio-pci');
  });

  t('1,000 open/mmap/close cycles leave no fd and no mapping behind', async () => {
    const warm = await openDevice(bdf, { backend, allowNoiommu });
    warm.device.close();
    warm.iommu.close();
    const fds = fdCount();
    const maps = mapCount();
    for (let i = 0; i < 1000; i++) {
      const { iommu, device } = await openDevice(bdf, { backend, allowNoiommu });
      const bar = device.mmap(0);
      bar.read32(0);
      device.close();
      iommu.close();
    }
    assert.is(fdCount(), fds, 'fd count changed');
    assert.is(mapCount(), maps, 'mapping count changed');
  });

  if (backend !== 'noiommu') {
    t('10,000 DMA map/unmap pairs leave no fd, mapping or table entry behind', async () => {
      const { iommu, device } = await openDevice(bdf, { backend });
      const buf = new DmaBuffer(4096);
      const fds = fdCount();
      const maps = mapCount();
      for (let i = 0; i < 10000; i++) {
        iommu.dmaMap(buf, 0x200000n, 4096);
        assert.is(iommu.dmaUnmap(0x200000n, 4096), 4096);
      }
      assert.equal(iommu.dmaList(), []);
      assert.is(fdCount(), fds);
      assert.is(mapCount(), maps);
      device.close();
      iommu.close();
      buf.close();
    });

    t('a map outside the valid IOVA ranges fails before the ioctl, naming the ranges', async () => {
      const { iommu, device } = await openDevice(bdf, { backend });
      const ranges = iommu.iovaRanges();
      assert.ok(ranges.length > 0, 'kernel reported no IOVA ranges');
      // x86 VT-d reserves the MSI window 0xfee00000..0xfeefffff: never a valid IOVA.
      const buf = new DmaBuffer(4096);
      const err = await caught(() => iommu.dmaMap(buf, 0xfee00000n, 4096));
      assert.is(err.code, 'ERR_VFIO_IOVA_RANGE');
      assert.match(err.message, /0x[0-9a-f]+-0x[0-9a-f]+/);
      assert.equal(iommu.dmaList(), []);
      device.close();
      iommu.close();
      buf.close();
    });

    const both = labBackends().includes('legacy') && labBackends().includes('iommufd');
    if (both)
      t('a device open through one backend refuses the other path with EBUSY', async () => {
        const other = backend === 'legacy' ? 'iommufd' : 'legacy';
        const first = await openDevice(bdf, { backend });
        const err = await caught(() => openDevice(bdf, { backend: other }));
        assert.is(err.code, 'EBUSY', `${err.message}`);
        first.device.close();
        first.iommu.close();
        // and once closed, the other path works
        const second = await openDevice(bdf, { backend: other });
        second.device.close();
        second.iommu.close();
      });
  }

  t('an unknown device address is refused with a one-line error naming it', async () => {
    const iommu = openIommu(backend);
    try {
      await openDevice('0000:7f:1f.7', { backend, allowNoiommu, iommu });
      assert.unreachable('opened a device that does not exist');
    } catch (err) {
      assert.match(String((err as Error).message), /0000:7f:1f\.7/);
    } finally {
      iommu.close();
    }
  });

  t.run();
}

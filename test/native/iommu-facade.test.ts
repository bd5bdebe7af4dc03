// SPDX-License-Identifier: MIT
// The Iommu facade's dmaMap over the fake addon: it hands the addon a buffer only when the
// buffer differs from the last one (selectDmaBuffer + dmaMapSelected), which must never map
// from the wrong buffer or a closed one.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VfioError } from '../../host/errors.js';
import { DmaBuffer, Iommu, useNativeLayer } from '../../host/index.js';
import type { IommuKind } from '../../host/native/types.js';
import { caught, fake, openEdu, PAGE } from './fixture.js';

useNativeLayer('fake');
const test = suite('iommu facade');

for (const kind of ['legacy', 'iommufd'] as IommuKind[]) {
  test(`${kind}: dmaMap maps from whichever buffer it is given, switching back and forth`, () => {
    const iommu = new Iommu(openEdu(kind).iommu);
    const small = new DmaBuffer(PAGE);
    const big = new DmaBuffer(4 * PAGE);
    iommu.dmaMap(big, 0x100000n, PAGE, 3 * PAGE);
    // the offset fits `big` but not `small`: a map from the previous buffer would succeed
    assert.instance(
      caught(() => iommu.dmaMap(small, 0x200000n, PAGE, 3 * PAGE)),
      RangeError,
    );
    iommu.dmaMap(small, 0x200000n, PAGE);
    iommu.dmaMap(big, 0x300000n, PAGE, 2 * PAGE);
    iommu.dmaMap(big, 0x400000n, PAGE, PAGE);
    assert.equal(
      iommu.dmaList().map((e) => e.bufferOffset),
      [3 * PAGE, 0, 2 * PAGE, PAGE],
    );
    assert.is(fake.mappedBytes(), 4 * PAGE);
    assert.is(iommu.dmaUnmap(0x100000n, 0x400000), 4 * PAGE);
    iommu.close();
  });

  test(`${kind}: dmaMap refuses a closed buffer and an object that is no DmaBuffer`, () => {
    const iommu = new Iommu(openEdu(kind).iommu);
    const buf = new DmaBuffer(PAGE);
    iommu.dmaMap(buf, 0x100000n, PAGE);
    buf.close();
    const e = caught(() => iommu.dmaMap(buf, 0x200000n, PAGE)) as VfioError;
    assert.is(e.code, 'ERR_VFIO_CLOSED');
    assert.is(e.op, kind === 'legacy' ? 'VFIO_IOMMU_MAP_DMA' : 'IOMMU_IOAS_MAP');
    const fresh = new DmaBuffer(PAGE);
    iommu.dmaMap(fresh, 0x200000n, PAGE);
    const notBuffer = { native: {} } as unknown as DmaBuffer;
    assert.instance(
      caught(() => iommu.dmaMap(notBuffer, 0x300000n, PAGE)),
      TypeError,
    );
    iommu.dmaMap(fresh, 0x300000n, PAGE, 0); // the refused object did not unselect `fresh`
    assert.is(iommu.dmaList().length, 3);
    assert.instance(
      caught(() => iommu.dmaMap(fresh, 0x400000n, -1)),
      RangeError,
    );
    iommu.close();
  });
}

test.run();

// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VfioError } from '../../host/errors.js';
import type { IommuKind } from '../../host/native/types.js';
import { caught, DMA_READ, DMA_WRITE, fake, native, openEdu, PAGE } from './fixture.js';

const test = suite('native dma');
const RW = DMA_READ | DMA_WRITE;
const VALID = 'valid=[0x0-0xfedfffff,0xfef00000-0xffffffffffffffff]';

for (const kind of ['legacy', 'iommufd'] as IommuKind[]) {
  const mapOp = kind === 'legacy' ? 'VFIO_IOMMU_MAP_DMA' : 'IOMMU_IOAS_MAP';
  const unmapOp = kind === 'legacy' ? 'VFIO_IOMMU_UNMAP_DMA' : 'IOMMU_IOAS_UNMAP';

  test(`${kind}: iovaRanges reports the device's valid ranges`, () => {
    const { iommu } = openEdu(kind);
    assert.equal(iommu.iovaRanges(), [
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: 0xffffffffffffffffn },
    ]);
    assert.ok((iommu.pageSizes() & 0x1000n) !== 0n);
    iommu.close();
  });

  test(`${kind}: a map is recorded in the table and in the kernel`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    iommu.dmaMap(buf, PAGE, 0x100000n, 2 * PAGE, RW);
    assert.equal(iommu.dmaList(), [
      { iova: 0x100000n, sizeBytes: 2 * PAGE, flags: RW, bufferOffset: PAGE },
    ]);
    assert.is(fake.mappedBytes(), 2 * PAGE);
    iommu.close();
    assert.is(fake.mappedBytes(), 0);
  });

  test(`${kind}: an overlapping map fails with EEXIST and changes nothing`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    iommu.dmaMap(buf, 0, 0x100000n, 2 * PAGE, RW);
    const e = caught(() => iommu.dmaMap(buf, 0, 0x101000n, 2 * PAGE, RW)) as VfioError;
    assert.is(e.code, 'EEXIST');
    assert.is(e.op, mapOp);
    assert.is(e.detail.iova, 0x101000n);
    assert.is(iommu.dmaList().length, 1);
    iommu.close();
  });

  test(`${kind}: a wrapping or unaligned map fails with EINVAL`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(2 * PAGE);
    const wrap = caught(() => iommu.dmaMap(buf, 0, 0xfffffffffffff000n, 2 * PAGE, RW)) as VfioError;
    assert.is(wrap.code, 'EINVAL');
    assert.is(
      (caught(() => iommu.dmaMap(buf, 0, 0x100800n, PAGE, RW)) as VfioError).code,
      'EINVAL',
    );
    assert.instance(
      caught(() => iommu.dmaMap(buf, 0, 0x100000n, 3 * PAGE, RW)),
      RangeError,
    );
    assert.instance(
      caught(() => iommu.dmaMap(buf, 0, 0x100000n, PAGE, 4)),
      RangeError,
    );
    iommu.close();
  });

  test(`${kind}: a map outside the valid IOVA ranges names the ranges`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(PAGE);
    const e = caught(() => iommu.dmaMap(buf, 0, 0xfee00000n, PAGE, RW)) as VfioError;
    assert.is(e.code, 'ERR_VFIO_IOVA_RANGE');
    assert.is(e.errno, 34);
    assert.is(e.op, mapOp);
    assert.ok(e.message.includes(VALID), e.message);
    assert.is(fake.mappedBytes(), 0);
    iommu.close();
  });

  test(`${kind}: dmaMapBatch reads BigUint64Arrays and dmaUnmapBatch undoes each entry`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    const offsets = new BigUint64Array([0n, BigInt(2 * PAGE)]);
    const iovas = new BigUint64Array([0x100000n, 0x300000n]);
    iommu.dmaMapBatch(buf, offsets, iovas, PAGE, RW);
    assert.equal(iommu.dmaList(), [
      { iova: 0x100000n, sizeBytes: PAGE, flags: RW, bufferOffset: 0 },
      { iova: 0x300000n, sizeBytes: PAGE, flags: RW, bufferOffset: 2 * PAGE },
    ]);
    assert.is(iommu.dmaUnmapBatch(iovas, PAGE), 2 * PAGE);
    assert.equal(iommu.dmaList(), []);
    assert.is(fake.mappedBytes(), 0);
    iommu.close();
  });

  test(`${kind}: a typed dmaMapBatch stops at the first bad entry and keeps the earlier ones`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(2 * PAGE);
    const offsets = new BigUint64Array([0n, BigInt(PAGE), 0n]);
    const iovas = new BigUint64Array([0x100000n, 0x100000n, 0x200000n]);
    const e = caught(() => iommu.dmaMapBatch(buf, offsets, iovas, PAGE, RW)) as VfioError;
    assert.is(e.code, 'EEXIST');
    assert.is(e.op, mapOp);
    assert.equal(
      iommu.dmaList().map((d) => d.iova),
      [0x100000n],
    );
    assert.instance(
      caught(() => iommu.dmaMapBatch(buf, offsets, [0x100000n, 0n, 0n], PAGE, RW)),
      TypeError,
    );
    assert.instance(
      caught(() => iommu.dmaMapBatch(buf, offsets, new BigUint64Array(2), PAGE, RW)),
      RangeError,
    );
    assert.instance(
      caught(() => iommu.dmaUnmapBatch([0x100000n] as unknown as BigUint64Array, PAGE)),
      TypeError,
    );
    iommu.close();
  });

  test(`${kind}: dmaMap refuses an object that is not a DmaBuffer with a TypeError`, () => {
    const { iommu } = openEdu(kind);
    const notBuffer = new native.EventFd();
    for (const bad of [notBuffer, {}, null, 5]) {
      const e = caught(() =>
        iommu.dmaMap(bad as unknown as Parameters<typeof iommu.dmaMap>[0], 0, 0x100000n, PAGE, RW),
      );
      assert.instance(e, TypeError);
      assert.ok((e as Error).message.startsWith('buffer: expected a DmaBuffer'), String(e));
    }
    assert.instance(
      caught(() =>
        iommu.dmaMap(new native.DmaBuffer(PAGE), 0, 0x100000 as unknown as bigint, PAGE, RW),
      ),
      TypeError,
    );
    notBuffer.close();
    assert.is(fake.mappedBytes(), 0);
    iommu.close();
  });

  test(`${kind}: dmaMapBatchSelected maps BigUint64Array lists from the selected buffer`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    const offsets = new BigUint64Array([0n, BigInt(2 * PAGE)]);
    const iovas = new BigUint64Array([0x100000n, 0x300000n]);
    assert.instance(
      caught(() => iommu.dmaMapBatchSelected(offsets, iovas, PAGE, RW)),
      TypeError,
      'nothing selected yet',
    );
    iommu.selectDmaBuffer(buf);
    assert.instance(
      caught(() => iommu.dmaMapBatchSelected(offsets, new BigUint64Array(1), PAGE, RW)),
      RangeError,
      'lists of different lengths',
    );
    assert.instance(
      caught(() => iommu.dmaMapBatchSelected([0] as never, iovas, PAGE, RW)),
      TypeError,
      'plain arrays are the other form (dmaMapBatch)',
    );
    iommu.dmaMapBatchSelected(offsets, iovas, PAGE, RW);
    assert.equal(iommu.dmaList(), [
      { iova: 0x100000n, sizeBytes: PAGE, flags: RW, bufferOffset: 0 },
      { iova: 0x300000n, sizeBytes: PAGE, flags: RW, bufferOffset: 2 * PAGE },
    ]);
    assert.is(iommu.dmaUnmap(0x100000n, 0x300000), 2 * PAGE);
    buf.close();
    const closed = caught(() => iommu.dmaMapBatchSelected(offsets, iovas, PAGE, RW)) as VfioError;
    assert.is(closed.code, 'ERR_VFIO_CLOSED');
    assert.is(fake.mappedBytes(), 0);
    iommu.close();
  });

  test(`${kind}: dmaMapSelected maps from the buffer selectDmaBuffer chose last`, () => {
    const { iommu } = openEdu(kind);
    const small = new native.DmaBuffer(PAGE);
    const big = new native.DmaBuffer(4 * PAGE);
    assert.instance(
      caught(() => iommu.dmaMapSelected(0, 0x100000n, PAGE, RW)),
      TypeError,
      'nothing selected yet',
    );
    iommu.selectDmaBuffer(small);
    assert.instance(
      caught(() => iommu.dmaMapSelected(2 * PAGE, 0x100000n, PAGE, RW)),
      RangeError,
      'offset 2 pages is beyond the 1-page buffer',
    );
    iommu.selectDmaBuffer(big);
    iommu.dmaMapSelected(2 * PAGE, 0x100000n, PAGE, RW);
    iommu.dmaMapSelected(PAGE, 0x200000n, PAGE, RW);
    assert.equal(iommu.dmaList(), [
      { iova: 0x100000n, sizeBytes: PAGE, flags: RW, bufferOffset: 2 * PAGE },
      { iova: 0x200000n, sizeBytes: PAGE, flags: RW, bufferOffset: PAGE },
    ]);
    const overlap = caught(() => iommu.dmaMapSelected(0, 0x100000n, PAGE, RW)) as VfioError;
    assert.is(overlap.code, 'EEXIST');
    assert.is(overlap.op, mapOp);
    assert.instance(
      caught(() => iommu.selectDmaBuffer({} as unknown as Parameters<typeof iommu.dmaMap>[0])),
      TypeError,
    );
    assert.is(fake.mappedBytes(), 2 * PAGE);
    iommu.close();
  });

  test(`${kind}: dmaMapSelected and dmaUnmap reach their Iommu without \`this\``, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(PAGE);
    iommu.selectDmaBuffer(buf);
    const { dmaMapSelected, dmaUnmap } = iommu; // own functions carrying their context
    dmaMapSelected(0, 0x100000n, PAGE, RW);
    assert.is(fake.mappedBytes(), PAGE);
    assert.is(dmaUnmap.call({}, 0x100000n, PAGE), PAGE, 'another `this` changes nothing');
    iommu.close();
    const e = caught(() => dmaUnmap(0x100000n, PAGE)) as VfioError;
    assert.is(e.code, 'ERR_VFIO_CLOSED');
    assert.is(e.op, unmapOp);
    assert.is(
      (caught(() => dmaMapSelected(0, 0x100000n, PAGE, RW)) as VfioError).code,
      'ERR_VFIO_CLOSED',
    );
  });

  test(`${kind}: a selected buffer that is closed is refused and not kept alive`, () => {
    const { iommu } = openEdu(kind);
    const before = fake.liveMappings();
    const mapped = new native.DmaBuffer(PAGE);
    iommu.selectDmaBuffer(mapped);
    iommu.dmaMapSelected(0, 0x100000n, PAGE, RW);
    mapped.close();
    const e = caught(() => iommu.dmaMapSelected(0, 0x200000n, PAGE, RW)) as VfioError;
    assert.is(e.code, 'ERR_VFIO_CLOSED');
    assert.is(e.op, mapOp);
    assert.instance(
      caught(() => iommu.dmaMapSelected(0, 0x200000 as unknown as bigint, PAGE, RW)),
      TypeError,
      'arguments are checked before the buffer',
    );
    assert.is(fake.liveMappings(), before + 1, 'the entry still holds the memory');
    iommu.dmaUnmap(0x100000n, PAGE);
    assert.is(fake.liveMappings(), before, 'the selection alone keeps nothing alive');
    const unmapped = new native.DmaBuffer(PAGE);
    unmapped.close();
    iommu.selectDmaBuffer(unmapped); // selecting a closed buffer is allowed; mapping it is not
    assert.is(
      (caught(() => iommu.dmaMapSelected(0, 0x100000n, PAGE, RW)) as VfioError).code,
      'ERR_VFIO_CLOSED',
    );
    assert.is(fake.mappedBytes(), 0);
    iommu.close();
  });

  test(`${kind}: benchDmaLoop maps and unmaps n times and leaves nothing mapped`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(2 * PAGE);
    for (const mode of ['backend', 'table'] as const) {
      const ns = native.benchDmaLoop(iommu, buf, PAGE, 0x100000n, PAGE, 5, mode);
      assert.ok(ns >= 0, `${mode}: elapsed ns ${ns}`);
      assert.equal(iommu.dmaList(), []);
      assert.is(fake.mappedBytes(), 0);
    }
    iommu.close();
  });

  test(`${kind}: benchDmaLoop refuses a mapped range and reports a kernel failure`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(PAGE);
    iommu.dmaMap(buf, 0, 0x100000n, PAGE, RW);
    const e = caught(() =>
      native.benchDmaLoop(iommu, buf, 0, 0x100000n, PAGE, 3, 'backend'),
    ) as VfioError;
    assert.is(e.code, 'EEXIST');
    assert.is(fake.mappedBytes(), PAGE, 'the existing mapping is untouched');
    fake.injectError(mapOp, 12);
    const f = caught(() =>
      native.benchDmaLoop(iommu, buf, 0, 0x200000n, PAGE, 3, 'backend'),
    ) as VfioError;
    assert.is(f.code, 'ENOMEM');
    assert.is(f.op, mapOp);
    assert.is(fake.mappedBytes(), PAGE);
    iommu.close();
  });

  test(`${kind}: a partial unmap that would split an entry is refused with EINVAL`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    iommu.dmaMap(buf, 0, 0x100000n, 4 * PAGE, RW);
    const e = caught(() => iommu.dmaUnmap(0x101000n, PAGE)) as VfioError;
    assert.is(e.code, 'EINVAL');
    assert.is(e.op, unmapOp);
    assert.is(iommu.dmaList().length, 1);
    assert.is(fake.mappedBytes(), 4 * PAGE);
    iommu.close();
  });

  test(`${kind}: an unmap covering several entries removes them all and returns the bytes`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(4 * PAGE);
    iommu.dmaMapBatch(buf, [0, PAGE, 2 * PAGE], [0x100000n, 0x102000n, 0x200000n], PAGE, RW);
    assert.is(iommu.dmaUnmap(0x100000n, 0x10000), 2 * PAGE);
    assert.equal(
      iommu.dmaList().map((e) => e.iova),
      [0x200000n],
    );
    assert.is(iommu.dmaUnmap(0x300000n, PAGE), 0, 'nothing mapped there: 0 bytes');
    assert.is(fake.mappedBytes(), PAGE);
    iommu.close();
  });

  test(`${kind}: a DmaBuffer closed while mapped stays alive until unmapped`, () => {
    const { iommu } = openEdu(kind);
    const before = fake.liveMappings();
    const buf = new native.DmaBuffer(PAGE);
    buf.write(0, Buffer.from('dma'));
    iommu.dmaMap(buf, 0, 0x100000n, PAGE, RW);
    buf.close();
    assert.is((caught(() => buf.read(0, 3)) as VfioError).code, 'ERR_VFIO_CLOSED');
    assert.is(
      (caught(() => iommu.dmaMap(buf, 0, 0x200000n, PAGE, RW)) as VfioError).code,
      'ERR_VFIO_CLOSED',
    );
    assert.is(fake.liveMappings(), before + 1, 'the table still holds the memory');
    iommu.dmaUnmap(0x100000n, PAGE);
    assert.is(fake.liveMappings(), before);
    iommu.close();
  });

  test(`${kind}: an injected kernel error leaves the table unchanged`, () => {
    const { iommu } = openEdu(kind);
    const buf = new native.DmaBuffer(PAGE);
    fake.injectError(mapOp, 12);
    const e = caught(() => iommu.dmaMap(buf, 0, 0x100000n, PAGE, RW)) as VfioError;
    assert.is(e.op, mapOp);
    assert.is(e.code, 'ENOMEM');
    assert.is(iommu.dmaList().length, 0);
    iommu.close();
  });
}

test('noiommu: dmaMap is refused with ERR_VFIO_NOIOMMU_DMA pointing at physAddr', () => {
  const { iommu } = openEdu('noiommu');
  const buf = new native.DmaBuffer(PAGE);
  const e = caught(() => iommu.dmaMap(buf, 0, 0x100000n, PAGE, RW)) as VfioError;
  assert.is(e.code, 'ERR_VFIO_NOIOMMU_DMA');
  assert.is(e.errno, 95);
  assert.match(e.message, 'physAddr');
  assert.equal(iommu.iovaRanges(), []);
  buf.lock();
  assert.ok(buf.physAddr(16) > 0n);
  iommu.close();
});

test('DmaBuffer read, write and fill are bounds-checked copies', () => {
  const buf = new native.DmaBuffer(100);
  assert.is(buf.sizeBytes, PAGE, 'rounded up to a page');
  buf.fill(0, 8, 0xab);
  buf.write(4, new Uint8Array([1, 2]));
  assert.equal([...buf.read(0, 8)], [0xab, 0xab, 0xab, 0xab, 1, 2, 0xab, 0xab]);
  assert.instance(
    caught(() => buf.read(PAGE - 1, 2)),
    RangeError,
  );
  buf.close();
  buf.close();
});

test.run();

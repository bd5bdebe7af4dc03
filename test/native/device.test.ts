// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VfioError } from '../../host/errors.js';
import {
  BAR0,
  CONFIG,
  caught,
  eduSpec,
  fake,
  native,
  openEdu,
  REGION_CAPS,
  REGION_MMAP,
  REGION_READ,
  REGION_WRITE,
} from './fixture.js';

const test = suite('native device');

test('info reports PCI, reset support and the region and irq counts', () => {
  const { iommu, device } = openEdu('legacy');
  assert.equal(device.info(), { flags: 0b11, numRegions: 9, numIrqs: 2 });
  iommu.close();
});

test('regionInfo parses the sparse mmap and msix-mappable capabilities', () => {
  const { iommu, device } = openEdu('iommufd');
  const info = device.regionInfo(BAR0);
  assert.is(info.flags, REGION_READ | REGION_WRITE | REGION_MMAP | REGION_CAPS);
  assert.is(info.sizeBytes, 0x100000);
  assert.is(info.fdOffset, 0n);
  assert.equal(info.caps, [
    {
      kind: 'sparse-mmap',
      areas: [
        { offset: 0, sizeBytes: 0x10000 },
        { offset: 0x20000, sizeBytes: 0xe0000 },
      ],
    },
    { kind: 'msix-mappable' },
  ]);
  const typed = device.regionInfo(8);
  assert.equal(typed.caps, [{ kind: 'type', type: 0x80008086, subtype: 3 }]);
  assert.is(typed.fdOffset, 8n << 40n);
  iommu.close();
});

test('regionInfo follows the argsz retry for a capability chain larger than any first guess', () => {
  const areas = Array.from({ length: 200 }, (_, i) => ({ offset: i * 0x1000, sizeBytes: 0x1000 }));
  const spec = eduSpec();
  const bar0 = { sizeBytes: 0x100000, flags: REGION_READ | REGION_MMAP, sparse: areas };
  const { iommu, device } = openEdu('legacy', { regions: [bar0, ...spec.regions.slice(1)] });
  const caps = device.regionInfo(BAR0).caps;
  assert.is(caps.length, 1);
  const cap = caps[0];
  assert.ok(cap !== undefined && cap.kind === 'sparse-mmap');
  if (cap?.kind === 'sparse-mmap') assert.equal(cap.areas, areas);
  iommu.close();
});

test('an absent region reports size 0 and no flags; a bad index is EINVAL', () => {
  const { iommu, device } = openEdu('legacy');
  assert.equal(device.regionInfo(1), {
    index: 1,
    flags: 0,
    sizeBytes: 0,
    fdOffset: 1n << 40n,
    caps: [],
  });
  const e = caught(() => device.regionInfo(42)) as VfioError;
  assert.is(e.code, 'EINVAL');
  assert.is(e.op, 'VFIO_DEVICE_GET_REGION_INFO');
  iommu.close();
});

test('read and write round-trip at widths 1, 2, 4 and 8 (8 as bigint)', () => {
  const { iommu, device } = openEdu('legacy');
  device.write(CONFIG, 0, 4, 0x11e81234);
  assert.is(device.read(CONFIG, 0, 2), 0x1234);
  assert.is(device.read(CONFIG, 2, 2), 0x11e8);
  device.write(CONFIG, 8, 8, 0x0102030405060708n);
  assert.is(device.read(CONFIG, 8, 8), 0x0102030405060708n);
  assert.is(device.read(CONFIG, 8, 1), 0x08);
  device.writeBlock(CONFIG, 0x40, Buffer.from([1, 2, 3]));
  assert.equal([...device.readBlock(CONFIG, 0x40, 3)], [1, 2, 3]);
  iommu.close();
});

test('bad widths, out-of-range values and out-of-region offsets are RangeErrors', () => {
  const { iommu, device } = openEdu('legacy');
  assert.instance(
    caught(() => device.read(CONFIG, 0, 3 as 4)),
    RangeError,
  );
  assert.instance(
    caught(() => device.write(CONFIG, 0, 1, 0x100)),
    RangeError,
  );
  assert.instance(
    caught(() => device.write(CONFIG, 0, 8, 1 as unknown as bigint)),
    TypeError,
  );
  const e = caught(() => device.read(CONFIG, 254, 4));
  assert.instance(e, RangeError);
  assert.match((e as Error).message, 'region 7 of size 256');
  iommu.close();
});

test('mmap of a sparse area shares memory with pread and rejects misaligned access', () => {
  const { iommu, device } = openEdu('iommufd');
  const map = device.mmap(BAR0, 0x20000, 0x1000);
  assert.is(map.sizeBytes, 0x1000);
  assert.is(map.regionIndex, BAR0);
  assert.is(map.regionOffset, 0x20000);
  map.write(4, 4, 0xcafef00d);
  assert.is(device.read(BAR0, 0x20004, 4), 0xcafef00d);
  map.write(8, 8, 0xffffffffffffffffn);
  assert.is(map.read(8, 8), 0xffffffffffffffffn);
  assert.instance(
    caught(() => map.read(2, 4)),
    RangeError,
  );
  assert.instance(
    caught(() => map.read(0x1000, 1)),
    RangeError,
  );
  assert.is((caught(() => device.mmap(BAR0, 0x10000, 0x1000)) as VfioError).op, 'mmap');
  assert.is(
    (caught(() => device.mmap(CONFIG, 0, 256)) as VfioError).code,
    'ERR_VFIO_NOT_MMAPPABLE',
  );
  iommu.close();
});

test('a Mapping throws ERR_VFIO_CLOSED after its device is closed, and is munmapped', () => {
  const { iommu, device } = openEdu('legacy');
  const before = fake.liveMappings();
  const map = device.mmap(BAR0, 0, 0x10000);
  assert.is(fake.liveMappings(), before + 1);
  device.close();
  assert.is(fake.liveMappings(), before);
  const e = caught(() => map.read(0, 4)) as VfioError;
  assert.is(e.code, 'ERR_VFIO_CLOSED');
  assert.is(e.errno, 9);
  assert.is((caught(() => map.write(0, 4, 1)) as VfioError).code, 'ERR_VFIO_CLOSED');
  assert.is((caught(() => device.info()) as VfioError).code, 'ERR_VFIO_CLOSED');
  map.close();
  device.close();
  iommu.close();
});

test('a write through a read-only mapping is refused instead of faulting', () => {
  const spec = eduSpec();
  const ro = { sizeBytes: 0x1000, flags: REGION_READ | REGION_MMAP };
  const { iommu, device } = openEdu('legacy', { regions: [ro, ...spec.regions.slice(1)] });
  const map = device.mmap(BAR0, 0, 0x1000);
  assert.is(map.read(0, 4), 0);
  const e = caught(() => map.write(0, 4, 1)) as VfioError;
  assert.is(e.code, 'ERR_VFIO_MAPPING_ACCESS');
  assert.is(e.errno, 13);
  iommu.close();
});

test('Mapping.close munmaps only that mapping', () => {
  const { iommu, device } = openEdu('legacy');
  const before = fake.liveMappings();
  const a = device.mmap(BAR0, 0, 0x1000);
  const b = device.mmap(BAR0, 0x1000, 0x1000);
  a.close();
  assert.is(fake.liveMappings(), before + 1);
  assert.is((caught(() => a.read(0, 4)) as VfioError).code, 'ERR_VFIO_CLOSED');
  b.write(0, 4, 7);
  assert.is(b.read(0, 4), 7);
  iommu.close();
  assert.is(fake.liveMappings(), before);
});

test('reset works when supported and is EINVAL when the device has no reset method', () => {
  const ok = openEdu('legacy');
  ok.device.reset();
  ok.iommu.close();
  const { iommu, device } = openEdu('legacy', { resetSupported: false });
  assert.is(device.info().flags & 1, 0);
  const e = caught(() => device.reset()) as VfioError;
  assert.is(e.op, 'VFIO_DEVICE_RESET');
  assert.is(e.code, 'EINVAL');
  iommu.close();
});

test('Device cannot be constructed from JS', () => {
  const { iommu, device } = openEdu('legacy');
  const Ctor = device.constructor as new () => unknown;
  assert.instance(
    caught(() => new Ctor()),
    TypeError,
  );
  iommu.close();
  assert.is(native.sysLayer, 'fake');
});

test.run();

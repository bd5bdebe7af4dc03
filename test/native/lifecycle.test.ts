// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VfioError } from '../../host/errors.js';
import type { IommuKind } from '../../host/native/types.js';
import { BAR0, caught, devicePaths, eduSpec, fake, native, PAGE } from './fixture.js';

const test = suite('native lifecycle');

test('1,000 open/close cycles on every backend leave no fake fd open', () => {
  fake.reset();
  const legacy = eduSpec();
  const cdev = fake.addDevice(legacy);
  const noiommu = eduSpec({ bdf: '0000:00:05.0', group: 9, noiommu: true });
  fake.addDevice(noiommu);
  const before = fake.liveMappings();
  for (let i = 0; i < 1000; i++) {
    const kind: IommuKind = (['legacy', 'iommufd', 'noiommu'] as const)[i % 3] ?? 'legacy';
    const spec = kind === 'noiommu' ? noiommu : legacy;
    const iommu = new native.Iommu(kind);
    const device = iommu.openDevice(devicePaths(spec, cdev));
    const map = device.mmap(BAR0, 0, PAGE);
    map.write(0, 4, i);
    if (kind !== 'noiommu') {
      const buf = new native.DmaBuffer(PAGE);
      iommu.dmaMap(buf, 0, 0x100000n, PAGE, 3);
      buf.close();
    }
    const efd = new native.EventFd();
    device.setIrqs(1, 32, 0, { type: 'eventfd', fds: [efd] });
    efd.close();
    if (i % 2 === 0) device.close();
    iommu.close();
  }
  assert.is(fake.openFds(), 0);
  assert.is(fake.mappedBytes(), 0);
  assert.is(fake.liveMappings(), before);
});

test('exclusive opens: a second group open and a cdev bind while the group is open are EBUSY', () => {
  fake.reset();
  const spec = eduSpec();
  const cdev = fake.addDevice(spec);
  const a = new native.Iommu('legacy');
  a.openDevice(devicePaths(spec, cdev));
  const b = new native.Iommu('legacy');
  const second = caught(() => b.openDevice(devicePaths(spec, cdev))) as VfioError;
  assert.is(second.code, 'EBUSY');
  assert.is(second.op, 'open');
  const c = new native.Iommu('iommufd');
  const bind = caught(() => c.openDevice(devicePaths(spec, cdev))) as VfioError;
  assert.is(bind.code, 'EBUSY');
  assert.is(bind.op, 'VFIO_DEVICE_BIND_IOMMUFD');
  a.close();
  const viaCdev = c.openDevice(devicePaths(spec, cdev));
  const d = new native.Iommu('iommufd');
  assert.is((caught(() => d.openDevice(devicePaths(spec, cdev))) as VfioError).code, 'EBUSY');
  assert.is((caught(() => b.openDevice(devicePaths(spec, cdev))) as VfioError).code, 'EBUSY');
  viaCdev.close();
  for (const iommu of [b, c, d]) iommu.close();
  assert.is(fake.openFds(), 0);
});

test('a device keeps working after its Iommu object is dropped, until closed', () => {
  fake.reset();
  const spec = eduSpec();
  const cdev = fake.addDevice(spec);
  const device = new native.Iommu('legacy').openDevice(devicePaths(spec, cdev));
  device.write(7, 0, 2, 0x1234);
  assert.is(device.read(7, 0, 2), 0x1234);
  device.close();
});

test.run();

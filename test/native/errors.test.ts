// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { VfioError } from '../../host/errors.js';
import { BAR0, caught, EDU_BDF, eduSpec, fake, native, openEdu } from './fixture.js';

const test = suite('native errors');

test('a failed open is a real VfioError with op, errno, code, message and detail', () => {
  fake.reset();
  const err = caught(() =>
    new native.Iommu('legacy').openDevice({ bdf: EDU_BDF, groupPath: '/dev/vfio/99' }),
  );
  assert.instance(err, VfioError);
  const e = err as VfioError;
  assert.is(e.op, 'open');
  assert.is(e.errno, 2);
  assert.is(e.code, 'ENOENT');
  assert.is(e.detail.path, '/dev/vfio/99');
  assert.is(e.message, 'open: No such file or directory (ENOENT) path=/dev/vfio/99');
});

test('an injected ioctl error surfaces with the kernel op name', () => {
  fake.reset();
  const cdev = fake.addDevice(eduSpec());
  fake.injectError('VFIO_GROUP_SET_CONTAINER', 16);
  const iommu = new native.Iommu('legacy');
  const e = caught(() => iommu.openDevice({ bdf: EDU_BDF, groupPath: '/dev/vfio/5' })) as VfioError;
  assert.is(e.op, 'VFIO_GROUP_SET_CONTAINER');
  assert.is(e.code, 'EBUSY');
  assert.is(e.errno, 16);
  assert.ok(
    iommu.openDevice({ bdf: EDU_BDF, groupPath: '/dev/vfio/5' }),
    'count 1: next call works',
  );
  iommu.close();
  assert.ok(cdev >= 0);
});

test('an injected error on a device op names that op', () => {
  const { iommu, device } = openEdu('iommufd');
  fake.injectError('VFIO_DEVICE_GET_REGION_INFO', 5);
  const e = caught(() => device.regionInfo(BAR0)) as VfioError;
  assert.is(e.op, 'VFIO_DEVICE_GET_REGION_INFO');
  assert.is(e.code, 'EIO');
  assert.is(e.detail.region, 0);
  fake.injectError('pread', 14);
  const r = caught(() => device.read(7, 0, 4)) as VfioError;
  assert.is(r.op, 'pread');
  assert.is(r.code, 'EFAULT');
  iommu.close();
});

test('a non-viable group fails with ERR_VFIO_GROUP_NOT_VIABLE and the group path', () => {
  fake.reset();
  fake.addDevice(eduSpec({ viable: false }));
  const e = caught(() =>
    new native.Iommu('legacy').openDevice({ bdf: EDU_BDF, groupPath: '/dev/vfio/5' }),
  ) as VfioError;
  assert.is(e.code, 'ERR_VFIO_GROUP_NOT_VIABLE');
  assert.is(e.op, 'VFIO_GROUP_GET_STATUS');
  assert.is(e.errno, 22);
  assert.is(e.detail.path, '/dev/vfio/5');
});

test('bad argument types throw TypeError naming the parameter and what was received', () => {
  const { iommu, device } = openEdu('legacy');
  const t = caught(() => device.read('0' as unknown as number, 0, 4));
  assert.instance(t, TypeError);
  assert.match((t as Error).message, "region: expected a number, received string '0'");
  const i = caught(() => iommu.dmaUnmap(4096 as unknown as bigint, 4096));
  assert.instance(i, TypeError);
  assert.match((i as Error).message, 'iova: expected a bigint, received number 4096');
  const k = caught(() => new native.Iommu('vfio' as 'legacy'));
  assert.instance(k, RangeError);
  iommu.close();
});

test('operations on a closed Iommu throw ERR_VFIO_CLOSED with errno EBADF', () => {
  const { iommu } = openEdu('legacy');
  iommu.close();
  iommu.close();
  const e = caught(() => iommu.iovaRanges()) as VfioError;
  assert.is(e.code, 'ERR_VFIO_CLOSED');
  assert.is(e.errno, 9);
});

test.run();

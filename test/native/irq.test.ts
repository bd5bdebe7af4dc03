// SPDX-License-Identifier: MIT
import { readFile } from 'node:fs/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VfioError } from '../../host/errors.js';
import {
  ACTION_MASK,
  ACTION_TRIGGER,
  ACTION_UNMASK,
  caught,
  EDU_BDF,
  fake,
  INTX,
  MSI,
  native,
  openEdu,
} from './fixture.js';

const test = suite('native irq');

test('irqInfo reports count and flags per index', () => {
  const { iommu, device } = openEdu('legacy');
  assert.equal(device.irqInfo(MSI), { index: MSI, flags: 0b1001, count: 4 });
  assert.is((caught(() => device.irqInfo(9)) as VfioError).code, 'EINVAL');
  iommu.close();
});

test('SET_IRQS with an eventfd, then fake.raiseIrq, resolves EventFd.wait with the count', async () => {
  const { iommu, device } = openEdu('iommufd');
  const efd = new native.EventFd();
  device.setIrqs(MSI, ACTION_TRIGGER, 2, { type: 'eventfd', fds: [efd] });
  const pending = efd.wait(5000);
  assert.ok(fake.raiseIrq(EDU_BDF, MSI, 2));
  assert.is(await pending, 1n);
  assert.not.ok(fake.raiseIrq(EDU_BDF, MSI, 0), 'vector 0 has no eventfd');
  efd.close();
  iommu.close();
});

test('EventFd.wait resolves 0n on timeout and read() is 0n when nothing is pending', async () => {
  const efd = new native.EventFd();
  assert.ok(efd.fd >= 0);
  assert.is(await efd.wait(10), 0n);
  assert.is(efd.read(), 0n);
  efd.write(3n);
  efd.write(2);
  assert.is(efd.read(), 5n);
  efd.close();
  assert.is(efd.fd, -1);
  assert.is((caught(() => efd.read()) as VfioError).code, 'ERR_VFIO_CLOSED');
});

test('many concurrent waits hold no thread: file I/O on the pool still completes meanwhile', async () => {
  // libuv's pool has 4 threads; a wait that parked one each would starve readFile here
  const efds = Array.from({ length: 12 }, () => new native.EventFd());
  const waits = efds.map((e) => e.wait(60_000));
  const text = await readFile(new URL(import.meta.url), 'utf8');
  assert.ok(text.includes('many concurrent waits'));
  for (const [i, e] of efds.entries()) e.write(i + 1);
  assert.equal(
    await Promise.all(waits),
    efds.map((_, i) => BigInt(i + 1)),
  );
  for (const e of efds) e.close();
});

test('two waits on one eventfd: the oldest gets the count, the next waits for the next signal', async () => {
  const efd = new native.EventFd();
  const first = efd.wait(60_000);
  const second = efd.wait(60_000);
  efd.write(2);
  assert.is(await first, 2n);
  efd.write(5);
  assert.is(await second, 5n);
  const third = efd.wait(60_000);
  efd.close();
  assert.is(await third, 0n, 'close() resolves a pending wait as a timeout would');
  assert.is(efd.fd, -1);
});

test('a wait settles at once when the count is already there, and 0n for a zero timeout', async () => {
  const efd = new native.EventFd();
  efd.write(7);
  assert.is(await efd.wait(60_000), 7n);
  assert.is(await efd.wait(0), 0n);
  efd.close();
});

test('the kernel keeps its own eventfd reference: closing ours still delivers', async () => {
  const { iommu, device } = openEdu('legacy');
  const efd = new native.EventFd();
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'eventfd', fds: [efd] });
  efd.close();
  assert.ok(fake.raiseIrq(EDU_BDF, INTX, 0));
  iommu.close();
});

test('DATA_NONE trigger is a loopback interrupt; count 0 disables the index', async () => {
  const { iommu, device } = openEdu('legacy');
  const efd = new native.EventFd();
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'eventfd', fds: [efd] });
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'none', count: 1 });
  assert.is(await efd.wait(1000), 1n);
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'bool', values: [true] });
  assert.is(efd.read(), 1n);
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'none', count: 0 });
  assert.not.ok(fake.raiseIrq(EDU_BDF, INTX, 0));
  efd.close();
  iommu.close();
});

test('a masked INTx does not fire until unmasked', () => {
  const { iommu, device } = openEdu('legacy');
  const efd = new native.EventFd();
  device.setIrqs(INTX, ACTION_TRIGGER, 0, { type: 'eventfd', fds: [efd] });
  device.setIrqs(INTX, ACTION_MASK, 0, { type: 'none', count: 1 });
  assert.not.ok(fake.raiseIrq(EDU_BDF, INTX, 0));
  device.setIrqs(INTX, ACTION_UNMASK, 0, { type: 'none', count: 1 });
  assert.ok(fake.raiseIrq(EDU_BDF, INTX, 0));
  assert.is(
    (caught(() => device.setIrqs(MSI, ACTION_MASK, 0, { type: 'none', count: 1 })) as VfioError).op,
    'VFIO_DEVICE_SET_IRQS',
  );
  efd.close();
  iommu.close();
});

test('setIrqs checks the action, the payload type and the vector range', () => {
  const { iommu, device } = openEdu('legacy');
  assert.instance(
    caught(() => device.setIrqs(MSI, 7, 0, { type: 'none', count: 1 })),
    RangeError,
  );
  assert.instance(
    caught(() => device.setIrqs(MSI, ACTION_TRIGGER, 0, { type: 'eventfd', fds: [{} as never] })),
    TypeError,
  );
  const e = caught(() =>
    device.setIrqs(MSI, ACTION_TRIGGER, 3, { type: 'bool', values: [true, true] }),
  ) as VfioError;
  assert.is(e.code, 'EINVAL');
  assert.is(e.detail.count, 2);
  iommu.close();
});

test("a failed wait rejects with a VfioError carrying the caller's stack", async () => {
  const efd = new native.EventFd();
  fake.injectError('poll', 4);
  let err: unknown;
  await efd.wait(1000).catch((e: unknown) => {
    err = e;
  });
  const e = err as VfioError;
  assert.is(e.op, 'poll');
  assert.is(e.code, 'EINTR');
  assert.match(String(e.stack), 'irq.test.js');
  efd.close();
});

test.run();

// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, VfioError } from '../../host/errors.js';
import { bindToVfio, fileWriter, unbind } from '../../host/sysfs/bind.js';
import { createFakeSysfs, type FakeSysfs, sampleMachine } from '../helpers/fake-sysfs.js';

const test = suite('bind');

async function withTree(tree: FakeSysfs, fn: (t: FakeSysfs) => Promise<void>): Promise<void> {
  try {
    await fn(tree);
  } finally {
    tree.cleanup();
  }
}

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return assert.unreachable('expected a rejection');
}

const NIC = '0000:01:00.0';
const NIC_DIR = `/sys/bus/pci/devices/${NIC}`;

test('bindToVfio writes driver_override, unbind and drivers_probe in that order', () =>
  withTree(sampleMachine(), async (t) => {
    const result = await bindToVfio('01:00.0', { root: t.root, writer: t.writer() });
    assert.equal(result, { bdf: NIC, previousDriver: 'e1000e', driver: 'vfio-pci', changed: true });
    assert.equal(t.writes, [
      { path: `${NIC_DIR}/driver_override`, data: 'vfio-pci' },
      { path: `${NIC_DIR}/driver/unbind`, data: NIC },
      { path: '/sys/bus/pci/drivers_probe', data: NIC },
    ]);
    assert.is(t.driverOf(NIC), 'vfio-pci');
  }));

test('bindToVfio of an unbound device skips the unbind write', () =>
  withTree(sampleMachine(), async (t) => {
    t.setDriver(NIC, null);
    const result = await bindToVfio(NIC, { root: t.root, writer: t.writer() });
    assert.is(result.previousDriver, null);
    assert.equal(
      t.writes.map((w) => w.path),
      [`${NIC_DIR}/driver_override`, '/sys/bus/pci/drivers_probe'],
    );
  }));

test('bindToVfio of a device already on vfio-pci changes nothing', () =>
  withTree(sampleMachine(), async (t) => {
    const result = await bindToVfio('02:00.0', { root: t.root, writer: t.writer() });
    assert.equal(result, {
      bdf: '0000:02:00.0',
      previousDriver: 'vfio-pci',
      driver: 'vfio-pci',
      changed: false,
    });
    assert.equal(t.writes, []);
  }));

test('bindToVfio of an unknown address is a ConfigError and writes nothing', () =>
  withTree(sampleMachine(), async (t) => {
    const err = await rejects(bindToVfio('00:1f.7', { root: t.root, writer: t.writer() }));
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).message, 'no PCI device 0000:00:1f.7');
    assert.is((err as ConfigError).hint, 'check `vfiobox list`');
    assert.equal(t.writes, []);
  }));

test('bindToVfio without the vfio-pci driver says to modprobe it', () =>
  withTree(sampleMachine(), async (t) => {
    t.remove('sys/bus/pci/drivers/vfio-pci');
    const err = await rejects(bindToVfio(NIC, { root: t.root, writer: t.writer() }));
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).code, 'ERR_VFIO_NO_VFIO_PCI');
    assert.match((err as ConfigError).hint ?? '', 'modprobe vfio-pci');
    assert.equal(t.writes, []);
  }));

test('bindToVfio refuses a device with no IOMMU group while no-IOMMU mode is off', () =>
  withTree(
    createFakeSysfs({
      devices: [{ bdf: '0000:00:03.0', vendor: 0x1234, device: 0x11e8, driver: null }],
      noiommuMode: false,
    }),
    async (t) => {
      const err = await rejects(bindToVfio('00:03.0', { root: t.root, writer: t.writer() }));
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).code, 'ERR_VFIO_NOIOMMU_DISABLED');
      assert.match((err as ConfigError).hint ?? '', 'enable_unsafe_noiommu_mode');
      assert.equal(t.writes, []);
    },
  ));

test('a permission error becomes "needs root" with the VfioError as its cause', async () => {
  for (const code of ['EACCES', 'EPERM']) {
    await withTree(sampleMachine(), async (t) => {
      t.failWrites(/driver_override$/, code);
      const err = await rejects(bindToVfio(NIC, { root: t.root, writer: t.writer() }));
      assert.instance(err, ConfigError);
      const config = err as ConfigError;
      assert.is(config.code, 'ERR_VFIO_NOT_ROOT');
      assert.match(config.message, `cannot write ${NIC_DIR}/driver_override`);
      assert.match(config.message, `(${code})`);
      assert.is(config.hint, 'needs root: run with sudo');
      const cause = config.cause as VfioError;
      assert.instance(cause, VfioError);
      assert.is(cause.op, 'sysfs:write');
      assert.is(cause.code, code);
      assert.is(cause.errno, code === 'EACCES' ? 13 : 1);
      assert.equal(cause.detail, { path: `${NIC_DIR}/driver_override`, bdf: NIC });
      assert.is(t.driverOf(NIC), 'e1000e', 'nothing changed');
    });
  }
});

test('a read-only sysfs says so', () =>
  withTree(sampleMachine(), async (t) => {
    t.failWrites(/driver_override$/, 'EROFS');
    const err = await rejects(bindToVfio(NIC, { root: t.root, writer: t.writer() }));
    assert.is((err as ConfigError).code, 'ERR_VFIO_SYSFS_READONLY');
  }));

test('any other failed write is a VfioError with op, errno, code and detail', () =>
  withTree(sampleMachine(), async (t) => {
    t.failWrites(/drivers_probe$/, 'ENODEV');
    const err = await rejects(bindToVfio(NIC, { root: t.root, writer: t.writer() }));
    assert.instance(err, VfioError);
    const v = err as VfioError;
    assert.is(v.op, 'sysfs:write');
    assert.is(v.errno, 19);
    assert.is(v.code, 'ENODEV');
    assert.equal(v.detail, { path: '/sys/bus/pci/drivers_probe', bdf: NIC });
    assert.is(
      v.message,
      `sysfs:write: no such device (ENODEV) path=/sys/bus/pci/drivers_probe bdf=${NIC}`,
    );
  }));

test('a writer bug is not disguised as a sysfs error', () =>
  withTree(sampleMachine(), async (t) => {
    const writer = {
      write: async () => {
        throw new TypeError('writer bug');
      },
    };
    const err = await rejects(bindToVfio(NIC, { root: t.root, writer }));
    assert.instance(err, TypeError);
  }));

test('a kernel that does not bind is reported as ERR_VFIO_BIND_FAILED', () =>
  withTree(sampleMachine(), async (t) => {
    const err = await rejects(
      bindToVfio(NIC, { root: t.root, writer: t.writer(false), verifyTimeoutMs: 40 }),
    );
    assert.instance(err, VfioError);
    assert.is((err as VfioError).code, 'ERR_VFIO_BIND_FAILED');
    assert.match((err as VfioError).message, 'its driver is e1000e');
    assert.is(t.writes.length, 3, 'the files were written all the same');
  }));

test('unbind clears driver_override and lets the default driver reclaim the device', () =>
  withTree(sampleMachine(), async (t) => {
    const dir = '/sys/bus/pci/devices/0000:02:00.0';
    const result = await unbind('02:00.0', { root: t.root, writer: t.writer() });
    assert.equal(result, {
      bdf: '0000:02:00.0',
      previousDriver: 'vfio-pci',
      driver: 'nvme',
      changed: true,
    });
    assert.equal(t.writes, [
      { path: `${dir}/driver/unbind`, data: '0000:02:00.0' },
      { path: `${dir}/driver_override`, data: '\n' },
      { path: '/sys/bus/pci/drivers_probe', data: '0000:02:00.0' },
    ]);
    assert.is(t.read('sys/devices/pci0000:00/0000:02:00.0/driver_override'), '(null)\n');
  }));

test('unbind leaves a device with no host driver unbound', () =>
  withTree(sampleMachine(), async (t) => {
    t.setDriver('0000:00:00.0', 'vfio-pci');
    const result = await unbind('00:00.0', { root: t.root, writer: t.writer() });
    assert.is(result.driver, null);
    assert.is(t.driverOf('0000:00:00.0'), null);
  }));

test('bind then unbind gives the device back to its original driver', () =>
  withTree(sampleMachine(), async (t) => {
    const opts = { root: t.root, writer: t.writer() };
    await bindToVfio(NIC, opts);
    const back = await unbind(NIC, opts);
    assert.equal([back.previousDriver, back.driver], ['vfio-pci', 'e1000e']);
  }));

test('fileWriter writes existing files and never creates one', () =>
  withTree(sampleMachine(), async (t) => {
    const writer = fileWriter(t.root);
    await writer.write(`${NIC_DIR}/driver_override`, 'vfio-pci');
    assert.is(t.read(`sys/devices/pci0000:00/${NIC}/driver_override`), 'vfio-pci');
    const err = await rejects(writer.write('/sys/bus/pci/no_such_attr', 'x'));
    assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  }));

test('bindToVfio with the real writer on a fake tree fails verification, not the writes', () =>
  withTree(sampleMachine(), async (t) => {
    const err = await rejects(bindToVfio(NIC, { root: t.root, verifyTimeoutMs: 0 }));
    assert.is((err as VfioError).code, 'ERR_VFIO_BIND_FAILED');
    assert.is(t.read('sys/bus/pci/drivers_probe'), NIC);
  }));

test.run();

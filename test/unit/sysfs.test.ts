// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, VfioError } from '../../host/errors.js';
import {
  driverAllowedInUserGroup,
  getPciDevice,
  groupDevices,
  groupNotViableError,
  groupPath,
  groupViability,
  listPciDevices,
  parseBdf,
  tryParseBdf,
  vfioAvailable,
} from '../../host/sysfs/pci.js';
import { checkVfioReady } from '../../host/vfio/ready.js';
import { createFakeSysfs, type FakeSysfs, sampleMachine } from '../helpers/fake-sysfs.js';

const test = suite('sysfs');

/** Runs `fn` against a fresh fake tree and always removes it. */
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

test('parseBdf normalises the short and the full form', () => {
  assert.is(parseBdf('00:04.0'), '0000:00:04.0');
  assert.is(parseBdf('0000:00:04.0'), '0000:00:04.0');
  assert.is(parseBdf('0000:AF:1F.7'), '0000:af:1f.7');
  assert.is(parseBdf(' 01:00.1\n'), '0000:01:00.1');
  assert.is(parseBdf('10000:00:00.0'), '10000:00:00.0', 'VMD domains have five digits');
});

test('parseBdf rejects garbage with a ConfigError naming the input', () => {
  for (const bad of [
    '',
    'eth0',
    '00:04',
    '00:04.8',
    '00:20.0',
    '0:00:04.0',
    '00:04.0x',
    'gg:00.0',
  ]) {
    assert.is(tryParseBdf(bad), null, bad);
    try {
      parseBdf(bad);
      assert.unreachable(`accepted ${bad}`);
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).code, 'ERR_VFIO_BAD_BDF');
      assert.ok((err as ConfigError).message.includes(JSON.stringify(bad)), bad);
      assert.ok((err as ConfigError).hint?.includes('0000:00:04.0'));
    }
  }
});

test('listPciDevices reads every attribute of every device, sorted by address', () =>
  withTree(sampleMachine(), async (t) => {
    const devices = await listPciDevices({ root: t.root });
    assert.equal(
      devices.map((d) => d.bdf),
      ['0000:00:00.0', '0000:00:1c.0', '0000:01:00.0', '0000:01:00.1', '0000:02:00.0'],
    );
    assert.equal(devices[2], {
      bdf: '0000:01:00.0',
      vendorId: 0x8086,
      deviceId: 0x10d3,
      subsystemVendorId: 0x8086,
      subsystemDeviceId: 0xa01f,
      classCode: 0x020000,
      revision: 3,
      driver: 'e1000e',
      iommuGroup: 7,
      cdev: null,
      resetMethods: ['flr', 'bus'],
      numaNode: 0,
      noiommu: false,
    });
  }));

test('a device bound to vfio-pci reports its cdev; an unbound one has driver null', () =>
  withTree(sampleMachine(), async (t) => {
    const nvme = await getPciDevice('02:00.0', { root: t.root });
    assert.is(nvme.driver, 'vfio-pci');
    assert.is(nvme.cdev, '/dev/vfio/devices/vfio2');
    const host = await getPciDevice('0000:00:00.0', { root: t.root });
    assert.is(host.driver, null);
    assert.equal(host.resetMethods, [], 'absent reset_method');
    assert.is(host.numaNode, null, 'numa_node -1');
  }));

test('a device without an iommu_group link has iommuGroup null', () =>
  withTree(
    createFakeSysfs({ devices: [{ bdf: '0000:00:03.0', vendor: 0x1af4, device: 0x1000 }] }),
    async (t) => {
      const d = await getPciDevice('00:03.0', { root: t.root });
      assert.is(d.iommuGroup, null);
      assert.is(d.noiommu, false);
    },
  ));

test('a no-IOMMU group is recognised by its /dev/vfio/noiommu-N node or its name', () =>
  withTree(
    createFakeSysfs({
      devices: [
        {
          bdf: '0000:00:03.0',
          vendor: 0x1234,
          device: 0x11e8,
          group: 0,
          driver: 'vfio-pci',
          noiommu: true,
        },
      ],
      noiommuMode: true,
    }),
    async (t) => {
      let d = await getPciDevice('00:03.0', { root: t.root });
      assert.is(d.noiommu, true);
      assert.is(groupPath(d), '/dev/vfio/noiommu-0');
      t.remove('dev/vfio/noiommu-0');
      d = await getPciDevice('00:03.0', { root: t.root });
      assert.is(d.noiommu, true, 'group name vfio-noiommu alone');
    },
  ));

test('listPciDevices returns [] when there is no PCI bus', () =>
  withTree(createFakeSysfs({ devices: [] }), async (t) => {
    t.remove('sys/bus/pci');
    assert.equal(await listPciDevices({ root: t.root }), []);
  }));

test('the root comes from VFIOBOX_SYSFS_ROOT when no option is given', () =>
  withTree(sampleMachine(), async (t) => {
    const saved = process.env.VFIOBOX_SYSFS_ROOT;
    process.env.VFIOBOX_SYSFS_ROOT = t.root;
    try {
      assert.is((await listPciDevices()).length, 5);
    } finally {
      if (saved === undefined) delete process.env.VFIOBOX_SYSFS_ROOT;
      else process.env.VFIOBOX_SYSFS_ROOT = saved;
    }
  }));

test('getPciDevice of an unknown address is a ConfigError pointing at vfiobox list', () =>
  withTree(sampleMachine(), async (t) => {
    const err = await rejects(getPciDevice('00:1f.7', { root: t.root }));
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).code, 'ERR_VFIO_NO_DEVICE');
    assert.is((err as ConfigError).message, 'no PCI device 0000:00:1f.7');
    assert.is((err as ConfigError).hint, 'check `vfiobox list`');
  }));

test('a malformed attribute is a VfioError naming the file', () =>
  withTree(sampleMachine(), async (t) => {
    t.file('sys/devices/pci0000:00/0000:01:00.0/class', 'garbage\n');
    const err = await rejects(getPciDevice('01:00.0', { root: t.root }));
    assert.instance(err, VfioError);
    assert.is((err as VfioError).code, 'ERR_VFIO_SYSFS_FORMAT');
    assert.is((err as VfioError).detail.path, '/sys/bus/pci/devices/0000:01:00.0/class');
  }));

test('groupDevices lists a group sorted and rejects an unknown group', () =>
  withTree(sampleMachine(), async (t) => {
    assert.equal(await groupDevices(7, { root: t.root }), [
      '0000:00:1c.0',
      '0000:01:00.0',
      '0000:01:00.1',
    ]);
    const err = await rejects(groupDevices(42, { root: t.root }));
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).code, 'ERR_VFIO_NO_GROUP');
    assert.instance(await rejects(groupDevices(-1)), RangeError);
  }));

test('driverAllowedInUserGroup follows the driver_managed_dma rule', () => {
  for (const ok of [null, 'vfio-pci', 'pci-stub', 'pcieport', 'mlx5_vfio_pci', 'xe-vfio-pci']) {
    assert.ok(driverAllowedInUserGroup(ok), String(ok));
  }
  for (const bad of ['e1000e', 'snd_hda_intel', 'nvme', 'shpchp', 'vfio', 'vfio_pci_core_x']) {
    assert.not.ok(driverAllowedInUserGroup(bad), bad);
  }
});

test('a group with devices on host drivers is not viable and names each blocker', () =>
  withTree(sampleMachine(), async (t) => {
    const v = await groupViability(7, { root: t.root });
    assert.equal(v, {
      group: 7,
      viable: false,
      blockers: [
        { bdf: '0000:01:00.0', driver: 'e1000e' },
        { bdf: '0000:01:00.1', driver: 'snd_hda_intel' },
      ],
    });
    const err = groupNotViableError(v);
    assert.is(err.code, 'ERR_VFIO_GROUP_NOT_VIABLE');
    assert.match(err.message, '0000:01:00.0 (e1000e), 0000:01:00.1 (snd_hda_intel) are bound');
    assert.is(err.hint, 'bind them to vfio-pci too: vfiobox bind 0000:01:00.0 0000:01:00.1');
  }));

test('a group is viable with vfio-pci, pci-stub, pcieport and unbound devices', () =>
  withTree(sampleMachine(), async (t) => {
    t.setDriver('0000:01:00.0', 'vfio-pci');
    t.addDriver('pci-stub');
    t.setDriver('0000:01:00.1', 'pci-stub');
    assert.equal(await groupViability(7, { root: t.root }), {
      group: 7,
      viable: true,
      blockers: [],
    });
    t.setDriver('0000:01:00.1', null);
    assert.ok((await groupViability(7, { root: t.root })).viable);
  }));

test('groupPath is /dev/vfio/N and refuses a device without a group', () => {
  assert.is(groupPath({ bdf: '0000:02:00.0', iommuGroup: 9, noiommu: false }), '/dev/vfio/9');
  try {
    groupPath({ bdf: '0000:02:00.0', iommuGroup: null, noiommu: false });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).code, 'ERR_VFIO_NO_GROUP');
  }
});

test('vfioAvailable reports each VFIO fact independently', async () => {
  await withTree(createFakeSysfs({ devices: [], iommufd: true, noiommuMode: true }), async (t) => {
    assert.equal(await vfioAvailable({ root: t.root }), {
      vfioContainer: true,
      iommufd: true,
      noiommuEnabled: true,
      vfioPciDriver: true,
    });
  });
  await withTree(
    createFakeSysfs({ devices: [], vfioPci: false, vfioContainer: false }),
    async (t) => {
      assert.equal(await vfioAvailable({ root: t.root }), {
        vfioContainer: false,
        iommufd: false,
        noiommuEnabled: false,
        vfioPciDriver: false,
      });
    },
  );
});

test('checkVfioReady picks legacy without /dev/iommu and iommufd with it', async () => {
  await withTree(sampleMachine(), async (t) => {
    const ready = await checkVfioReady('02:00.0', { root: t.root });
    assert.is(ready.kind, 'legacy');
    assert.is(ready.groupPath, '/dev/vfio/9');
    assert.is(ready.cdevPath, null);
  });
  await withTree(sampleMachine({ iommufd: true }), async (t) => {
    const ready = await checkVfioReady('02:00.0', { root: t.root });
    assert.is(ready.kind, 'iommufd');
    assert.is(ready.cdevPath, '/dev/vfio/devices/vfio2');
    assert.is(ready.groupPath, null);
  });
});

async function readyError(t: FakeSysfs, bdf: string): Promise<ConfigError> {
  const err = await rejects(checkVfioReady(bdf, { root: t.root }));
  assert.instance(err, ConfigError);
  return err as ConfigError;
}

test('checkVfioReady names the first thing to fix, with the fix', async () => {
  await withTree(sampleMachine(), async (t) => {
    const e = await readyError(t, '01:00.0');
    assert.is(e.code, 'ERR_VFIO_NOT_BOUND');
    assert.is(e.message, '0000:01:00.0 is bound to e1000e, not vfio-pci');
    assert.is(e.hint, 'run: vfiobox bind 0000:01:00.0');
    t.setDriver('0000:01:00.0', 'vfio-pci');
    assert.is((await readyError(t, '01:00.0')).code, 'ERR_VFIO_GROUP_NOT_VIABLE');
  });
  await withTree(sampleMachine(), async (t) => {
    t.remove('sys/bus/pci/drivers/vfio-pci');
    const e = await readyError(t, '01:00.0');
    assert.is(e.code, 'ERR_VFIO_NO_VFIO_PCI');
    assert.is(e.hint, 'load vfio-pci (modprobe vfio-pci)');
  });
  await withTree(sampleMachine({ vfioContainer: false }), async (t) => {
    const e = await readyError(t, '02:00.0');
    assert.is(e.code, 'ERR_VFIO_NO_VFIO');
    assert.is(`${e.message}: ${e.hint}`, 'no /dev/vfio/vfio: load vfio-pci (modprobe vfio-pci)');
  });
});

test('checkVfioReady refuses a no-IOMMU device while no-IOMMU mode is off', () =>
  withTree(
    createFakeSysfs({
      devices: [
        {
          bdf: '0000:00:03.0',
          vendor: 0x1234,
          device: 0x11e8,
          group: 0,
          driver: 'vfio-pci',
          noiommu: true,
        },
      ],
      noiommuMode: false,
    }),
    async (t) => {
      const e = await readyError(t, '00:03.0');
      assert.is(e.code, 'ERR_VFIO_NOIOMMU_DISABLED');
      assert.match(e.hint ?? '', 'enable_unsafe_noiommu_mode');
      t.file('sys/module/vfio/parameters/enable_unsafe_noiommu_mode', 'Y\n');
      const ready = await checkVfioReady('00:03.0', { root: t.root });
      assert.is(ready.kind, 'noiommu');
      assert.is(ready.groupPath, '/dev/vfio/noiommu-0');
    },
  ));

test.run();

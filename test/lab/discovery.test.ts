// SPDX-License-Identifier: MIT
// Discovery and binding against the guest's real sysfs: what `vfiobox list` shows, group
// viability, an unbind/bind round trip through driver_override, and `vfiobox info`.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../host/cli/main.js';
import {
  bindToVfio,
  checkVfioReady,
  getPciDevice,
  groupViability,
  listPciDevices,
  unbind,
} from '../../host/index.js';
import { EDU_ID, labDevices, labMode, TESTDEV_ID } from '../helpers/lab-env.js';

const t = suite('discovery (real sysfs)');
const devs = labDevices();

function capture(): { io: Parameters<typeof main>[1]; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      isTTY: false,
    },
    out: () => out,
    err: () => err,
  };
}

t('lists the lab devices with driver, group and (iommu mode) cdev', async () => {
  const all = await listPciDevices();
  assert.ok(devs.length >= 3, `lab reported ${devs.length} devices`);
  for (const d of devs) {
    const found = all.find((p) => p.bdf === d.bdf);
    assert.ok(found, `${d.bdf} missing from listPciDevices`);
    assert.is(found?.driver, 'vfio-pci');
    assert.ok(found?.iommuGroup !== null);
    assert.is(found?.noiommu, labMode === 'noiommu');
    if (d.cdev) assert.is(found?.cdev, d.cdev);
  }
});

t('the edu behind the root port has a bus reset method; the root-bus one has none', async () => {
  const edus = devs.filter((d) => d.id === EDU_ID);
  const methods = await Promise.all(
    edus.map(async (d) => (await getPciDevice(d.bdf)).resetMethods),
  );
  assert.ok(
    methods.some((m) => m.includes('bus')),
    JSON.stringify(methods),
  );
  assert.ok(
    methods.some((m) => m.length === 0),
    JSON.stringify(methods),
  );
});

t('every lab group is viable', async () => {
  for (const d of devs) {
    const p = await getPciDevice(d.bdf);
    const v = await groupViability(p.iommuGroup ?? -1);
    assert.ok(v.viable, `${d.bdf}: ${JSON.stringify(v.blockers)}`);
  }
});

t('unbind then bind the pci-testdev through driver_override', async () => {
  const td = devs.find((d) => d.id === TESTDEV_ID);
  assert.ok(td);
  const bdf = td?.bdf ?? '';
  const off = await unbind(bdf);
  assert.is(off.previousDriver, 'vfio-pci');
  assert.is((await getPciDevice(bdf)).driver, null);
  const on = await bindToVfio(bdf);
  assert.is(on.driver, 'vfio-pci');
  const ready = await checkVfioReady(bdf, { allowNoiommu: labMode === 'noiommu' });
  assert.is(
    ready.kind,
    labMode === 'noiommu' ? 'noiommu' : devs.some((d) => d.cdev) ? 'iommufd' : 'legacy',
  );
});

t('vfiobox list --json matches the library', async () => {
  const c = capture();
  assert.is(await main(['list', '--json'], c.io), 0, c.err());
  const rows = JSON.parse(c.out()) as Array<{ bdf: string; driver: string | null }>;
  for (const d of devs) assert.is(rows.find((r) => r.bdf === d.bdf)?.driver, 'vfio-pci');
});

t('vfiobox info shows BAR0 as mmap-able and MSI with one vector', async () => {
  const edu = devs.find((d) => d.id === EDU_ID);
  const c = capture();
  const backend = labMode === 'noiommu' ? ['--backend', 'noiommu'] : [];
  assert.is(await main(['info', edu?.bdf ?? '', ...backend], c.io), 0, c.err());
  assert.match(c.out(), /BAR0\s+0x100000\s+read,write,mmap/);
  assert.match(c.out(), /MSI\s+1\s+eventfd/);
});

t('vfiobox info on a missing device is one line with a non-zero exit', async () => {
  const c = capture();
  assert.is(await main(['info', '0000:7f:1f.7'], c.io), 1);
  assert.match(c.err(), /^vfiobox: .*0000:7f:1f\.7/);
});

t.run();

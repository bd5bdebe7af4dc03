// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type BackendFacts, ConfigError, chooseBackend } from '../../host/index.js';

const t = suite('backend choice');

const both: BackendFacts = {
  bdf: '0000:00:04.0',
  iommufd: true,
  container: true,
  cdev: '/dev/vfio/devices/vfio0',
  groupPath: '/dev/vfio/3',
  noiommuGroup: false,
  noiommuEnabled: false,
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as ConfigError).code;
  }
  throw new Error('no error');
}

t('auto picks iommufd when /dev/iommu and the device cdev exist', () => {
  assert.equal(chooseBackend(both), { kind: 'iommufd', cdevPath: '/dev/vfio/devices/vfio0' });
});

t('auto falls back to legacy without a cdev', () => {
  assert.equal(chooseBackend({ ...both, cdev: null }), {
    kind: 'legacy',
    groupPath: '/dev/vfio/3',
  });
});

t('auto falls back to legacy without /dev/iommu', () => {
  assert.is(chooseBackend({ ...both, iommufd: false }).kind, 'legacy');
});

t('an explicit legacy request is honoured even when iommufd is possible', () => {
  assert.is(chooseBackend(both, 'legacy').kind, 'legacy');
});

t('an explicit iommufd request without a cdev is refused, not substituted', () => {
  assert.is(
    code(() => chooseBackend({ ...both, cdev: null }, 'iommufd')),
    'ERR_VFIO_BACKEND_UNAVAILABLE',
  );
});

const noiommu: BackendFacts = {
  ...both,
  iommufd: false,
  cdev: null,
  groupPath: '/dev/vfio/noiommu-0',
  noiommuGroup: true,
  noiommuEnabled: true,
};

t('auto never picks no-IOMMU without the opt-in', () => {
  assert.is(
    code(() => chooseBackend(noiommu)),
    'ERR_VFIO_NOIOMMU_OPT_IN',
  );
});

t('auto picks no-IOMMU with the opt-in', () => {
  assert.equal(chooseBackend(noiommu, 'auto', true), {
    kind: 'noiommu',
    groupPath: '/dev/vfio/noiommu-0',
  });
});

t('noiommu is refused when the kernel does not enable it', () => {
  assert.is(
    code(() => chooseBackend({ ...noiommu, noiommuEnabled: false }, 'noiommu')),
    'ERR_VFIO_NOIOMMU_DISABLED',
  );
});

t('legacy is refused for a no-IOMMU group', () => {
  assert.is(
    code(() => chooseBackend(noiommu, 'legacy')),
    'ERR_VFIO_BACKEND_UNAVAILABLE',
  );
});

t('no VFIO at all names the module to load', () => {
  try {
    chooseBackend({ ...both, iommufd: false, container: false });
    assert.unreachable();
  } catch (err) {
    assert.is((err as ConfigError).code, 'ERR_VFIO_NOT_AVAILABLE');
    assert.match(String((err as ConfigError).hint), /modprobe vfio-pci/);
  }
});

t('an unbound device points at vfiobox bind', () => {
  const facts = { ...both, cdev: null, groupPath: null };
  assert.is(
    code(() => chooseBackend(facts)),
    'ERR_VFIO_NOT_BOUND',
  );
});

t.run();

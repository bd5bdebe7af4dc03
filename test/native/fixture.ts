// SPDX-License-Identifier: MIT
// Shared setup for the native tier: the fake addon, an edu-like fake device, and the few
// kernel constants the tests need (values from include/uapi/linux/vfio.h; host/vfio/uapi.ts
// is the canonical home, these are repeated so this tier depends on host/native only).

import { loadNative } from '../../host/native/binding.js';
import type {
  FakeDeviceSpec,
  IommuKind,
  Native,
  NativeDevice,
  NativeFakeKernel,
  NativeIommu,
} from '../../host/native/types.js';

export const native: Native = loadNative('fake');

function requireFake(n: Native): NativeFakeKernel {
  if (!n.fake) throw new Error('vfio_core_fake.node has no fake export');
  return n.fake;
}
export const fake: NativeFakeKernel = requireFake(native);

export const REGION_READ = 1 << 0;
export const REGION_WRITE = 1 << 1;
export const REGION_MMAP = 1 << 2;
export const REGION_CAPS = 1 << 3;
export const IRQ_EVENTFD = 1 << 0;
export const IRQ_MASKABLE = 1 << 1;
export const IRQ_AUTOMASKED = 1 << 2;
export const IRQ_NORESIZE = 1 << 3;
export const ACTION_MASK = 1 << 3;
export const ACTION_UNMASK = 1 << 4;
export const ACTION_TRIGGER = 1 << 5;
export const DMA_READ = 1 << 0;
export const DMA_WRITE = 1 << 1;
export const INTX = 0;
export const MSI = 1;
export const BAR0 = 0;
export const CONFIG = 7;
export const PAGE = 4096;

export const EDU_BDF = '0000:00:03.0';

/** an edu-like device: 1 MiB BAR0 with two sparse mmap areas, 256-byte config, INTx + MSI */
export function eduSpec(overrides: Partial<FakeDeviceSpec> = {}): FakeDeviceSpec {
  const absent = { sizeBytes: 0, flags: 0 };
  return {
    bdf: EDU_BDF,
    group: 5,
    regions: [
      {
        sizeBytes: 0x100000,
        flags: REGION_READ | REGION_WRITE | REGION_MMAP,
        sparse: [
          { offset: 0, sizeBytes: 0x10000 },
          { offset: 0x20000, sizeBytes: 0xe0000 },
        ],
        msixMappable: true,
      },
      absent,
      absent,
      absent,
      absent,
      absent,
      absent,
      { sizeBytes: 256, flags: REGION_READ | REGION_WRITE },
      { sizeBytes: 0x1000, flags: REGION_READ, type: { type: 0x80008086, subtype: 3 } },
    ],
    irqs: [
      { count: 1, flags: IRQ_EVENTFD | IRQ_MASKABLE | IRQ_AUTOMASKED },
      { count: 4, flags: IRQ_EVENTFD | IRQ_NORESIZE },
    ],
    iovaRanges: [
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: 0xffffffffffffffffn },
    ],
    ...overrides,
  };
}

export interface Opened {
  iommu: NativeIommu;
  device: NativeDevice;
  cdev: number;
}

export function devicePaths(spec: FakeDeviceSpec, cdev: number) {
  return {
    bdf: spec.bdf,
    groupPath: spec.noiommu ? `/dev/vfio/noiommu-${spec.group}` : `/dev/vfio/${spec.group}`,
    cdevPath: `/dev/vfio/devices/vfio${cdev}`,
  };
}

/** resets the fake, adds one device and opens it through a new Iommu of `kind`. */
export function openEdu(kind: IommuKind, overrides: Partial<FakeDeviceSpec> = {}): Opened {
  fake.reset();
  const spec = eduSpec(kind === 'noiommu' ? { noiommu: true, ...overrides } : overrides);
  const cdev = fake.addDevice(spec);
  const iommu = new native.Iommu(kind);
  const device = iommu.openDevice(devicePaths(spec, cdev));
  return { iommu, device, cdev };
}

/** runs fn and returns what it threw (fails the test when nothing was thrown). */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an exception, none was thrown');
}

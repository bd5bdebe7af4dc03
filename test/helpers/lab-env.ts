// SPDX-License-Identifier: MIT
// What the lab's guest init tells a test about its devices (test/lab/guest-init.sh writes these).

export interface LabDevice {
  bdf: string;
  id: string;
  driver: string;
  group: string;
  cdev: string;
}

export const labMode = process.env.VFIOLAB_MODE ?? '';
export const labVfio = process.env.VFIOLAB_VFIO ?? '';

/** True when running inside the lab guest. */
export const inLab = labMode !== '';

export function labDevices(): LabDevice[] {
  const n = Number(process.env.VFIOLAB_NDEV ?? 0);
  const out: LabDevice[] = [];
  for (let i = 0; i < n; i++) {
    const get = (k: string): string => process.env[`VFIOLAB_DEV${i}_${k}`] ?? '';
    out.push({
      bdf: get('BDF'),
      id: get('ID'),
      driver: get('DRIVER'),
      group: get('GROUP'),
      cdev: get('CDEV'),
    });
  }
  return out;
}

export const EDU_ID = '1234:11e8';
export const TESTDEV_ID = '1b36:0005';

/** The backends this boot of the lab can exercise. */
export function labBackends(): Array<'legacy' | 'iommufd' | 'noiommu'> {
  if (labMode === 'noiommu') return ['noiommu'];
  if (labVfio === 'stock') return ['legacy'];
  return ['legacy', 'iommufd'];
}

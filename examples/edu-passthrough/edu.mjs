#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Drive a real QEMU edu device through VFIO from JavaScript: ident through pread and mmap,
// liveness, factorial, a DMA round trip through the IOMMU, and an MSI through an eventfd.
// Usage (as root, edu bound to vfio-pci): node edu.mjs [BDF] [--backend auto|legacy|iommufd|noiommu]
import { parseArgs } from 'node:util';
import { DmaBuffer, EventFd, openDevice, uapi } from '../../build/host/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { backend: { type: 'string', default: 'auto' } },
});
const bdf = positionals[0] ?? process.env.VFIOLAB_DEV0_BDF ?? '0000:00:04.0';
const backend = values.backend;
const step = (name, detail) => console.log(`${name.padEnd(12)} ${detail}`);

const { iommu, device } = await openDevice(bdf, { backend, allowNoiommu: backend === 'noiommu' });
step('open', `${bdf} through the ${iommu.kind} backend`);
try {
  device.setCommandBits(uapi.PCI_COMMAND_MEMORY | uapi.PCI_COMMAND_MASTER);
  step('ident', `pread 0x${device.read(0, 0x00, 4).toString(16)}`);
  const bar = device.mmap(0);
  step('ident', `mmap  0x${bar.read32(0x00).toString(16)}`);
  bar.write32(0x04, 0x12345678);
  step('liveness', `wrote 0x12345678, read 0x${bar.read32(0x04).toString(16)}`);
  bar.write32(0x08, 10);
  while (bar.read32(0x20) & 1);
  step('factorial', `10! = ${bar.read32(0x08)}`);

  if (iommu.kind !== 'noiommu') {
    const buf = new DmaBuffer(8192);
    const iova = 0x100000n;
    buf.write(0, Buffer.from('hello from vfiobox through the IOMMU\0'));
    iommu.dmaMap(buf, iova, 8192);
    const dma = (src, dst, cmd) => {
      bar.write64(0x80, src);
      bar.write64(0x88, dst);
      bar.write64(0x90, 64n);
      bar.write64(0x98, BigInt(cmd | 1));
      while (bar.read64(0x98) & 1n);
    };
    dma(iova, 0x40000n, 0); // RAM -> edu
    dma(0x40000n, iova + 4096n, 2); // edu -> RAM
    step('dma', `round trip: "${buf.read(4096, 64).toString().split('\0')[0]}"`);
    iommu.dmaUnmap(iova, 8192);
    buf.close();
  }

  const efd = new EventFd();
  device.enableIrq(uapi.VFIO_PCI_MSI_IRQ_INDEX, [efd]);
  bar.write32(0x60, 1);
  const n = await efd.wait(3000);
  step('msi', n > 0n ? `eventfd fired (count ${n})` : 'no interrupt within 3 s');
  bar.write32(0x64, 0xffffffff);
  device.disableIrq(uapi.VFIO_PCI_MSI_IRQ_INDEX);
  efd.close();
} finally {
  device.close();
  iommu.close();
}

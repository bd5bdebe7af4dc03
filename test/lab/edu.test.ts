// SPDX-License-Identifier: MIT
// The TypeScript API walks the real kernel VFIO uAPI against QEMU's edu device, step for step
// with the C baseline (shared lab vfio_edu_test.c): open, info, config, BAR by pread and mmap,
// liveness, factorial, DMA both ways, MSI and INTx through eventfds, unmap + IOMMU blocks, reset.
// Runs inside the lab guest (test/lab/run-in-guest.sh); one suite per backend x edu device.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DmaBuffer,
  EventFd,
  type Iommu,
  type Mapping,
  openDevice,
  uapi,
  type VfioDevice,
  VfioError,
} from '../../host/index.js';
import { EDU, eduDma, pollUntil } from '../helpers/edu.js';
import { EDU_ID, labBackends, labDevices } from '../helpers/lab-env.js';

const IOVA_BASE = 0x100000n; // below edu's default 28-bit DMA mask too
const PAGE = 4096;
const XFER = 2048; // QEMU 7.2's edu rejects (and aborts on) a full 4096-byte transfer

interface Ctx {
  iommu?: Iommu;
  dev?: VfioDevice;
  bar?: Mapping;
  buf?: DmaBuffer;
  dmaAddr: [bigint, bigint];
  mapped: boolean;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} missing: an earlier step failed`);
  return v;
}

function pattern(): Buffer {
  const b = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

function walk(backend: 'legacy' | 'iommufd' | 'noiommu', bdf: string): void {
  const t = suite(`edu ${backend} ${bdf}`);
  const c: Ctx = { dmaAddr: [0n, 0n], mapped: false };
  const noiommu = backend === 'noiommu';

  t('opens the device through the chosen backend', async () => {
    const r = await openDevice(bdf, { backend, allowNoiommu: noiommu });
    c.iommu = r.iommu;
    c.dev = r.device;
    assert.is(r.iommu.kind, backend);
    assert.is(r.device.backend, backend);
  });

  t('device info says PCI with config region and MSI', () => {
    const info = need(c.dev, 'device').info();
    assert.ok(info.flags & uapi.VFIO_DEVICE_FLAGS_PCI, `flags 0x${info.flags.toString(16)}`);
    assert.ok(info.numRegions > uapi.VFIO_PCI_CONFIG_REGION_INDEX);
    assert.ok(info.numIrqs > uapi.VFIO_PCI_MSI_IRQ_INDEX);
  });

  t('BAR0 is 1 MiB and mmap-able; config space says 1234:11e8', () => {
    const dev = need(c.dev, 'device');
    const bar0 = dev.regionInfo(uapi.VFIO_PCI_BAR0_REGION_INDEX);
    assert.is(bar0.sizeBytes, 1 << 20);
    assert.ok(bar0.flags & uapi.VFIO_REGION_INFO_FLAG_MMAP);
    assert.is(dev.configRead(uapi.PCI_VENDOR_ID, 2), 0x1234);
    assert.is(dev.configRead(uapi.PCI_DEVICE_ID, 2), 0x11e8);
  });

  t('enables memory decode and bus mastering through config space', () => {
    const cmd = need(c.dev, 'device').setCommandBits(
      uapi.PCI_COMMAND_MEMORY | uapi.PCI_COMMAND_MASTER,
    );
    assert.is(cmd & 0x6, 0x6);
  });

  t('reads ident through pread', () => {
    assert.is(need(c.dev, 'device').read(0, EDU.IDENT, 4), EDU.IDENT_VALUE);
  });

  t('reads ident through mmap', () => {
    c.bar = need(c.dev, 'device').mmap(0);
    assert.is(c.bar.read32(EDU.IDENT), EDU.IDENT_VALUE);
  });

  t('liveness register reads back inverted', () => {
    const bar = need(c.bar, 'BAR0 mapping');
    for (const p of [0x12345678, 0, 0xffffffff, 0xa5a55a5a]) {
      bar.write32(EDU.LIVENESS, p);
      assert.is(bar.read32(EDU.LIVENESS), ~p >>> 0);
    }
  });

  t('computes 10! = 3628800', () => {
    const bar = need(c.bar, 'BAR0 mapping');
    bar.write32(EDU.FACT, 10);
    assert.ok(
      pollUntil(() => (bar.read32(EDU.STATUS) & 1) === 0, 2000),
      'factorial still computing after 2 s',
    );
    assert.is(bar.read32(EDU.FACT), 3628800);
  });

  t('maps a DMA buffer', () => {
    const buf = new DmaBuffer(2 * PAGE);
    c.buf = buf;
    buf.write(0, pattern());
    buf.fill(PAGE, PAGE, 0xee);
    const iommu = need(c.iommu, 'iommu');
    if (noiommu) {
      const err = assert.throws(() => iommu.dmaMap(buf, IOVA_BASE, 2 * PAGE));
      buf.lock();
      c.dmaAddr = [buf.physAddr(0), buf.physAddr(PAGE)];
      assert.ok(c.dmaAddr[0] > 0n && c.dmaAddr[1] > 0n, 'pagemap gave physical addresses');
      void err;
    } else {
      iommu.dmaMap(buf, IOVA_BASE, 2 * PAGE);
      c.mapped = true;
      c.dmaAddr = [IOVA_BASE, IOVA_BASE + BigInt(PAGE)];
      assert.equal(
        iommu.dmaList().map((e) => [e.iova, e.sizeBytes]),
        [[IOVA_BASE, 2 * PAGE]],
      );
    }
  });

  t('DMA RAM -> device -> RAM round trip matches byte for byte', () => {
    const bar = need(c.bar, 'BAR0 mapping');
    const buf = need(c.buf, 'DMA buffer');
    assert.ok(eduDma(bar, c.dmaAddr[0], EDU.BUF_ADDR, XFER, 0), 'RAM->edu DMA did not complete');
    assert.ok(
      eduDma(bar, EDU.BUF_ADDR, c.dmaAddr[1], XFER, EDU.DMA_TO_RAM),
      'edu->RAM DMA did not complete',
    );
    assert.ok(buf.read(0, XFER).equals(buf.read(PAGE, XFER)), 'data differs');
    assert.is(buf.read(PAGE + XFER, 1)[0], 0xee, 'DMA wrote past the transfer');
  });

  t('MSI: raise and DMA-done interrupts arrive on the eventfd', async () => {
    const dev = need(c.dev, 'device');
    const bar = need(c.bar, 'BAR0 mapping');
    const buf = need(c.buf, 'DMA buffer');
    const info = dev.irqInfo(uapi.VFIO_PCI_MSI_IRQ_INDEX);
    assert.ok(info.count >= 1 && info.flags & uapi.VFIO_IRQ_INFO_EVENTFD);
    const efd = new EventFd();
    try {
      dev.enableIrq(uapi.VFIO_PCI_MSI_IRQ_INDEX, [efd]);
      bar.write32(EDU.IRQ_RAISE, 0x1);
      assert.ok((await efd.wait(3000)) > 0n, 'no MSI within 3 s');
      bar.write32(EDU.IRQ_ACK, 0xffffffff);
      buf.fill(PAGE, PAGE, 0);
      assert.ok(eduDma(bar, EDU.BUF_ADDR, c.dmaAddr[1], XFER, EDU.DMA_TO_RAM | EDU.DMA_IRQ));
      assert.ok((await efd.wait(3000)) > 0n, 'no DMA-done MSI within 3 s');
      assert.ok(bar.read32(EDU.IRQ_STATUS) & EDU.DMA_IRQ_BIT);
      assert.ok(buf.read(0, XFER).equals(buf.read(PAGE, XFER)));
      bar.write32(EDU.IRQ_ACK, 0xffffffff);
      dev.disableIrq(uapi.VFIO_PCI_MSI_IRQ_INDEX);
    } finally {
      efd.close();
    }
  });

  t('INTx: two interrupts with an unmask between them', async () => {
    const dev = need(c.dev, 'device');
    const bar = need(c.bar, 'BAR0 mapping');
    const info = dev.irqInfo(uapi.VFIO_PCI_INTX_IRQ_INDEX);
    assert.ok(info.count >= 1, 'edu has INTx');
    const efd = new EventFd();
    try {
      dev.enableIrq(uapi.VFIO_PCI_INTX_IRQ_INDEX, [efd]);
      bar.write32(EDU.IRQ_RAISE, 0x2);
      assert.ok((await efd.wait(3000)) > 0n, 'no INTx within 3 s');
      bar.write32(EDU.IRQ_ACK, 0xffffffff);
      dev.unmaskIrq(uapi.VFIO_PCI_INTX_IRQ_INDEX);
      bar.write32(EDU.IRQ_RAISE, 0x2);
      assert.ok((await efd.wait(3000)) > 0n, 'no second INTx after unmask');
      bar.write32(EDU.IRQ_ACK, 0xffffffff);
      dev.unmaskIrq(uapi.VFIO_PCI_INTX_IRQ_INDEX);
      dev.disableIrq(uapi.VFIO_PCI_INTX_IRQ_INDEX);
    } finally {
      efd.close();
    }
  });

  if (!noiommu) {
    t('after unmap the IOMMU blocks the device from the old IOVA', () => {
      const iommu = need(c.iommu, 'iommu');
      const bar = need(c.bar, 'BAR0 mapping');
      const buf = need(c.buf, 'DMA buffer');
      assert.is(iommu.dmaUnmap(IOVA_BASE, 2 * PAGE), 2 * PAGE);
      c.mapped = false;
      assert.equal(iommu.dmaList(), []);
      buf.fill(PAGE, PAGE, 0x5a);
      eduDma(bar, EDU.BUF_ADDR, IOVA_BASE + BigInt(PAGE), XFER, EDU.DMA_TO_RAM);
      const after = buf.read(PAGE, PAGE);
      assert.ok(
        after.every((b) => b === 0x5a),
        'DMA to an unmapped IOVA reached memory',
      );
    });
  }

  t('reset works where the device has a reset method, else fails with EINVAL', () => {
    const dev = need(c.dev, 'device');
    const bar = need(c.bar, 'BAR0 mapping');
    if (dev.resetSupported) {
      bar.write32(EDU.FACT, 5);
      dev.reset();
      assert.is(bar.read32(EDU.IDENT), EDU.IDENT_VALUE);
    } else {
      const err = catchErr(() => dev.reset());
      assert.instance(err, VfioError);
      assert.is((err as VfioError).op, 'VFIO_DEVICE_RESET');
      assert.is((err as VfioError).code, 'EINVAL');
    }
  });

  t('close releases the mapping: a later access throws ERR_VFIO_CLOSED', () => {
    const bar = need(c.bar, 'BAR0 mapping');
    if (c.mapped) need(c.iommu, 'iommu').dmaUnmap(IOVA_BASE, 2 * PAGE);
    need(c.dev, 'device').close();
    const err = catchErr(() => bar.read32(EDU.IDENT));
    assert.is((err as VfioError).code, 'ERR_VFIO_CLOSED');
    need(c.iommu, 'iommu').close();
    c.buf?.close();
  });

  t.run();
}

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, none was thrown');
}

const edus = labDevices().filter((d) => d.id === EDU_ID);
for (const backend of labBackends()) {
  for (const d of edus) walk(backend, d.bdf);
}

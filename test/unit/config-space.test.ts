// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type ConfigChange,
  ConfigSpace,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_STATUS_PARITY,
  PCI_STATUS_REC_MASTER_ABORT,
} from '../../host/device/config-space.js';
import { validateDescription } from '../../host/device/describe.js';
import { PluginError } from '../../host/errors.js';
import type { DeviceDescription } from '../../host/plugins/engine.js';
import { fakeDescription } from '../helpers/fake-plugin.js';

const isRangeError = (e: unknown): boolean => e instanceof RangeError;

const test = suite('config-space');

function space(
  edit: (d: DeviceDescription) => void = () => undefined,
  opts: ConstructorParameters<typeof ConfigSpace>[1] = {},
): ConfigSpace {
  const d = fakeDescription();
  edit(d);
  return new ConfigSpace(validateDescription('t', d), opts);
}

/** BAR sizing as a driver does it (6.2.5.1): save, write all-ones, read, restore. */
function size(cfg: ConfigSpace, offset: number): number {
  const saved = cfg.read(offset, 4);
  cfg.write(offset, 4, 0xffff_ffff);
  const mask = cfg.read(offset, 4);
  cfg.write(offset, 4, saved);
  return mask;
}

test('header fields come from describe() and are read-only', () => {
  const cfg = space();
  const header = [cfg.read(0x00, 4), cfg.read(0x08, 4), cfg.read(0x2c, 4), cfg.read(0x0e, 1)];
  assert.equal(header, [0x10f0_1af4, 0xff00_0002, 0x0001_1af4, 0x00]);
  for (const at of [0x00, 0x08, 0x2c, 0x0c]) cfg.write(at, 4, 0xffff_ffff);
  assert.equal(cfg.read(0x00, 4), 0x10f0_1af4);
  assert.equal(cfg.read(0x08, 4), 0xff00_0002);
  assert.equal(cfg.read(0x2c, 4), 0x0001_1af4);
  // Cache Line Size is RW; latency timer, header type and BIST stay 0.
  assert.equal(cfg.read(0x0c, 4), 0x0000_00ff);
});

test('interrupt pin reflects the INTx pin and interrupt line is RW', () => {
  const cfg = space();
  assert.equal(cfg.read(0x3d, 1), 1);
  cfg.write(0x3c, 2, 0xff0b);
  assert.equal(cfg.read(0x3c, 2), 0x010b);
  const noPin = space((d) => {
    d.irqs.intx = 'd';
  });
  assert.equal(noPin.read(0x3d, 1), 4);
});

test('a 32-bit memory BAR sizes to its size with type bits 0', () => {
  assert.equal(size(space(), 0x10), 0xffff_f000);
});

test('a 64-bit prefetchable BAR sizes across both dwords', () => {
  const cfg = space();
  assert.equal(size(cfg, 0x18), 0xffff_c00c);
  assert.equal(size(cfg, 0x1c), 0xffff_ffff);
  const big = space((d) => {
    d.bars[1] = { index: 2, sizeBytes: 8n << 30n, kind: 'mem64', prefetchable: false };
  });
  assert.equal(size(big, 0x18), 0x0000_0004);
  assert.equal(size(big, 0x1c), 0xffff_fffe);
});

test('an I/O BAR sizes with bit 0 set', () => {
  assert.equal(size(space(), 0x20), 0xffff_ffe1);
});

test('unimplemented BARs and the ROM BAR read 0 after an all-ones write', () => {
  const cfg = space();
  assert.equal(size(cfg, 0x14), 0);
  assert.equal(size(cfg, 0x24), 0);
  assert.equal(size(cfg, 0x30), 0);
});

test('a programmed BAR address reads back with the size bits cleared', () => {
  const cfg = space();
  cfg.write(0x10, 4, 0xfebf_1234);
  assert.equal(cfg.read(0x10, 4), 0xfebf_1000);
  cfg.write(0x12, 2, 0xfe00);
  assert.equal(cfg.read(0x10, 4), 0xfe00_1000);
  cfg.write(0x11, 1, 0xff);
  assert.equal(cfg.read(0x10, 4), 0xfe00_f000);
});

test('command keeps only IO, MEM, MASTER, PARITY, SERR and INTX_DISABLE', () => {
  const cfg = space();
  cfg.write(0x04, 2, 0xffff);
  assert.equal(cfg.read(0x04, 2), 0x0547);
  assert.ok(cfg.intxDisabled);
  cfg.write(0x05, 1, 0x00);
  assert.equal(cfg.read(0x04, 2), 0x0047);
  assert.not.ok(cfg.intxDisabled);
});

test('status error bits are write-1-to-clear and the rest is read-only', () => {
  const cfg = space();
  assert.equal(cfg.read(0x06, 2), 0x0010, 'CAP_LIST only');
  cfg.raiseStatus(PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_PARITY);
  assert.equal(cfg.read(0x06, 2), 0x2110);
  cfg.write(0x06, 2, 0);
  assert.equal(cfg.read(0x06, 2), 0x2110, 'writing 0 clears nothing');
  cfg.write(0x06, 2, 0x2000 | 0x0018);
  assert.equal(cfg.read(0x06, 2), 0x0110, 'only the written error bit cleared');
  cfg.write(0x04, 4, 0xffff_0000);
  assert.equal(cfg.read(0x06, 2), 0x0010);
});

test('the interrupt status bit follows the INTx line and ignores writes', () => {
  const cfg = space();
  cfg.setIntxStatus(true);
  assert.equal(cfg.read(0x06, 2) & 0x08, 0x08);
  cfg.write(0x06, 2, 0xffff);
  assert.equal(cfg.read(0x06, 2) & 0x08, 0x08);
  cfg.setIntxStatus(false);
  assert.equal(cfg.read(0x06, 2) & 0x08, 0);
});

test('the capability list walks PM, MSI, MSI-X and ends at 0', () => {
  const cfg = space(undefined, { pm: true });
  const seen: [number, number][] = [];
  for (let at = cfg.read(0x34, 1); at !== 0; at = cfg.read(at + 1, 1)) {
    assert.ok(at % 4 === 0 && at >= 0x40, `aligned pointer ${at}`);
    seen.push([at, cfg.read(at, 1)]);
  }
  assert.equal(seen, [
    [0x40, PCI_CAP_ID_PM],
    [0x48, PCI_CAP_ID_MSI],
    [0x60, PCI_CAP_ID_MSIX],
  ]);
  assert.is(cfg.findCapability(PCI_CAP_ID_MSIX), 0x60);
});

test('a device without MSI or MSI-X has no capability list', () => {
  const cfg = space((d) => {
    d.irqs = { intx: 'a', msiVectors: 0, msix: undefined };
  });
  assert.equal(cfg.read(0x06, 2) & 0x10, 0);
  assert.equal(cfg.read(0x34, 1), 0);
  assert.is(cfg.caps.length, 0);
});

test('MSI is 64-bit with per-vector masking and clamps Multiple Message Enable', () => {
  const cfg = space();
  const msi = cfg.msiOffset ?? 0;
  assert.equal(cfg.read(msi + 2, 2), 0x0184, '64BIT | MASKBIT | MMC=2 (4 vectors)');
  cfg.write(msi + 2, 2, 0x0071);
  assert.equal(cfg.read(msi + 2, 2), 0x01a5, 'MME clamped to MMC, enable set');
  assert.ok(cfg.msiEnabled);
  assert.is(cfg.msiEnabledVectors, 4);
  cfg.write(msi + 4, 4, 0xfee0_0003);
  assert.equal(cfg.read(msi + 4, 4), 0xfee0_0000, 'address is dword aligned');
  cfg.write(msi + 12, 4, 0xffff_ffff);
  assert.equal(cfg.read(msi + 12, 4), 0x0000_ffff, 'extended data is RO 0');
  cfg.write(msi + 16, 4, 0xffff_ffff);
  assert.equal(cfg.read(msi + 16, 4), 0xf, 'mask bits for the 4 vectors only');
  assert.ok(cfg.msiMasked(3));
  cfg.write(msi + 20, 4, 0xffff_ffff);
  assert.equal(cfg.read(msi + 20, 4), 0, 'pending bits are RO');
  cfg.setMsiPending(2, true);
  assert.equal(cfg.read(msi + 20, 4), 0x4);
});

test('MSI-X reports table size, BIR and offsets; only enable and function mask are RW', () => {
  const cfg = space((d) => {
    d.irqs.msix = { vectors: 4, tableBar: 2, tableOffset: 0x1000, pbaBar: 0, pbaOffset: 0x800 };
  });
  const msix = cfg.msixOffset ?? 0;
  assert.equal(cfg.read(msix, 4) & 0xffff_00ff, 0x0003_0011);
  assert.equal(cfg.read(msix + 4, 4), 0x1002);
  assert.equal(cfg.read(msix + 8, 4), 0x0800);
  cfg.write(msix + 2, 2, 0xffff);
  assert.equal(cfg.read(msix + 2, 2), 0xc003);
  assert.ok(cfg.msixEnabled && cfg.msixFunctionMasked);
  cfg.write(msix + 4, 4, 0);
  assert.equal(cfg.read(msix + 4, 4), 0x1002);
});

test('PM accepts D0 and D3hot and ignores unsupported D1/D2', () => {
  const cfg = space(undefined, { pm: true });
  const ctrl = (cfg.pmOffset ?? 0) + 4;
  assert.equal(cfg.read(ctrl, 2), 0x0008, 'D0, No_Soft_Reset');
  cfg.write(ctrl, 2, 0x3);
  assert.equal(cfg.read(ctrl, 2), 0x000b);
  cfg.write(ctrl, 2, 0x1);
  assert.equal(cfg.read(ctrl, 2), 0x000b);
  cfg.write(ctrl, 1, 0x0);
  assert.equal(cfg.read(ctrl, 2), 0x0008);
});

test('offsets outside the header and caps go to the plugin', () => {
  const calls: string[] = [];
  const cfg = space(undefined, {
    backend: {
      read: (offset, width) => {
        calls.push(`r${offset.toString(16)}/${width}`);
        return 0xabcd;
      },
      write: (offset, width, value) => {
        calls.push(`w${offset.toString(16)}/${width}=${value.toString(16)}`);
      },
    },
  });
  assert.equal(cfg.read(0xa0, 2), 0xabcd);
  cfg.write(0xfc, 4, 0x1234);
  cfg.read(0x40, 4);
  cfg.write(0x04, 2, 0x2);
  assert.equal(calls, ['ra0/2', 'wfc/4=1234']);
  assert.ok(cfg.isEmulated(0x63) && !cfg.isEmulated(0x64));
});

test('misaligned or out-of-range accesses are RangeErrors', () => {
  const cfg = space();
  assert.throws(() => cfg.read(0x02, 4), isRangeError);
  assert.throws(() => cfg.write(0xff, 2, 0), isRangeError);
  assert.throws(() => cfg.read(0x100, 1), isRangeError);
});

test('reset restores every power-on value', () => {
  const cfg = space(undefined, { pm: true });
  const before = cfg.snapshot();
  cfg.write(0x04, 2, 0x0407);
  cfg.write(0x10, 4, 0xfebf_0000);
  cfg.write(0x3c, 1, 11);
  cfg.write((cfg.msiOffset ?? 0) + 2, 2, 0x1);
  cfg.raiseStatus(PCI_STATUS_PARITY);
  assert.not.equal(cfg.snapshot(), before);
  cfg.reset();
  assert.equal(cfg.snapshot(), before);
});

test('writes that change command, MSI or MSI-X report it; no-op writes do not', () => {
  const seen: ConfigChange[] = [];
  const cfg = space(undefined, { onChange: (what) => seen.push(what) });
  cfg.write(0x04, 2, 0x0400);
  cfg.write(0x04, 2, 0x0400);
  cfg.write((cfg.msiOffset ?? 0) + 2, 2, 0x1);
  cfg.write((cfg.msixOffset ?? 0) + 2, 2, 0x8000);
  cfg.write(0x3c, 1, 5);
  assert.equal(seen, ['command', 'msi', 'msix']);
});

test('describe() validation accepts the fake device and freezes the copy', () => {
  const desc = validateDescription('t', fakeDescription());
  assert.ok(Object.isFrozen(desc) && Object.isFrozen(desc.bars[0]));
  assert.is(desc.irqs.intx, 'a');
});

/** Sets the field at `path` (e.g. ['bars', 0, 'sizeBytes']) in a description. */
function setField(d: DeviceDescription, path: (string | number)[], value: unknown): void {
  let at = d as unknown as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path[path.length - 1] as string | number] = value;
}

const FIELD_CASES: [string, (string | number)[], unknown][] = [
  ['vendor id over 16 bits', ['vendorId'], 0x10000],
  ['class code over 24 bits', ['classCode'], 0x1000000],
  ['BAR index 6', ['bars', 0, 'index'], 6],
  ['size not a power of two', ['bars', 0, 'sizeBytes'], 24n],
  ['memory BAR below 16 bytes', ['bars', 0, 'sizeBytes'], 8n],
  ['I/O BAR below 4 bytes', ['bars', 2, 'sizeBytes'], 2n],
  ['I/O BAR above 256 bytes', ['bars', 2, 'sizeBytes'], 512n],
  ['prefetchable I/O BAR', ['bars', 2, 'prefetchable'], true],
  ['unknown BAR kind', ['bars', 0, 'kind'], 'mem16'],
  ['3 MSI vectors', ['irqs', 'msiVectors'], 3],
  ['64 MSI vectors', ['irqs', 'msiVectors'], 64],
  ['unknown INTx pin', ['irqs', 'intx'], 'e'],
];

const INVALID: [string, (d: DeviceDescription) => void, string][] = FIELD_CASES.map(
  ([what, path, value]) => [
    what,
    (d) => setField(d, path, value),
    path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i ? `.${k}` : k)).join(''),
  ],
);

INVALID.push(
  [
    'mem64 upper slot reused',
    (d) => {
      d.bars.push({ index: 3, sizeBytes: 16n, kind: 'mem32', prefetchable: false });
    },
    'bars[3].index',
  ],
  [
    'mem64 in slot 5',
    (d) => {
      d.bars = [{ index: 5, sizeBytes: 16n, kind: 'mem64', prefetchable: false }];
    },
    'bars[0].index',
  ],
);

function msix(d: DeviceDescription, edit: Partial<NonNullable<DeviceDescription['irqs']['msix']>>) {
  d.irqs.msix = { vectors: 4, tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x800, ...edit };
}

INVALID.push(
  ['0 MSI-X vectors', (d) => msix(d, { vectors: 0 }), 'irqs.msix.vectors'],
  ['2049 MSI-X vectors', (d) => msix(d, { vectors: 2049 }), 'irqs.msix.vectors'],
  ['MSI-X table offset not 8-aligned', (d) => msix(d, { tableOffset: 4 }), 'irqs.msix.tableOffset'],
  ['MSI-X table in the I/O BAR', (d) => msix(d, { tableBar: 4 }), 'irqs.msix.tableBar'],
  ['MSI-X table in an absent BAR', (d) => msix(d, { tableBar: 1 }), 'irqs.msix.tableBar'],
  [
    'MSI-X table past the BAR end',
    (d) => msix(d, { tableOffset: 0x3ff8 }),
    'irqs.msix.tableOffset',
  ],
  ['PBA overlapping the table', (d) => msix(d, { pbaOffset: 0x30 }), 'irqs.msix.pbaOffset'],
  [
    'claimed range past its BAR',
    (d) => void d.claimedRanges.push({ bar: 0, offset: 4000n, lengthBytes: 200n }),
    'claimedRanges[0]',
  ],
  [
    'claimed range on the MSI-X table',
    (d) => void d.claimedRanges.push({ bar: 2, offset: 0n, lengthBytes: 8n }),
    'claimedRanges[0]',
  ],
);

for (const [what, edit, field] of INVALID) {
  test(`describe() validation rejects ${what}, naming ${field}`, () => {
    const d = fakeDescription();
    edit(d);
    try {
      validateDescription('t', d);
      assert.unreachable('accepted');
    } catch (err) {
      assert.instance(err, PluginError);
      assert.is((err as PluginError).kind, 'invalid');
      assert.ok((err as Error).message.includes(`${field}:`), (err as Error).message);
    }
  });
}

test('describe() validation rejects a non-record answer', () => {
  assert.throws(
    () => validateDescription('t', 42),
    (err: unknown) => err instanceof PluginError,
  );
  assert.throws(
    () => validateDescription('t', { ...fakeDescription(), bars: 'none' }),
    (err: unknown) => err instanceof PluginError && err.message.includes('bars:'),
  );
});

test.run();

// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  canonicalEntry,
  countWildcards,
  entryMatches,
  type IdEntry,
  type IdTable,
  matchIdTable,
  PCI_ANY_ID,
  type PciIds,
} from '../../host/match.js';

const test = suite('match');

/** An Intel 82574L NIC (8086:10d3, subsystem 8086:a01f, class 020000). */
const NIC: PciIds = {
  vendorId: 0x8086,
  deviceId: 0x10d3,
  subsystemVendorId: 0x8086,
  subsystemDeviceId: 0xa01f,
  classCode: 0x020000,
};

/** A Samsung NVMe controller (class 010802). */
const NVME: PciIds = {
  vendorId: 0x144d,
  deviceId: 0xa808,
  subsystemVendorId: 0x144d,
  subsystemDeviceId: 0xa801,
  classCode: 0x010802,
};

function one(entry: IdEntry, ids: PciIds = NIC): boolean {
  return entryMatches(canonicalEntry(entry), ids);
}

function wildcards(entry: IdEntry): number {
  return countWildcards(canonicalEntry(entry));
}

test('an exact entry matches and any differing id does not', () => {
  const exact = { vendor: 0x8086, device: 0x10d3, subvendor: 0x8086, subdevice: 0xa01f };
  assert.ok(one(exact));
  assert.not.ok(one({ ...exact, vendor: 0x8087 }));
  assert.not.ok(one({ ...exact, device: 0x10d4 }));
  assert.not.ok(one({ ...exact, subvendor: 0x1028 }));
  assert.not.ok(one({ ...exact, subdevice: 0 }));
});

test("PCI_ANY_ID, '*' and an absent id are the same wildcard", () => {
  for (const any of [PCI_ANY_ID, '*' as const, undefined]) {
    const e = canonicalEntry({ vendor: 0x8086, device: any, subvendor: any, subdevice: any });
    assert.equal(e, {
      vendor: 0x8086,
      device: PCI_ANY_ID,
      subvendor: PCI_ANY_ID,
      subdevice: PCI_ANY_ID,
      classCode: 0,
      classMask: 0,
    });
    assert.ok(entryMatches(e, NIC));
  }
  assert.ok(one({}), 'the all-wildcard entry matches everything');
});

test('class is compared under classMask as pci_match_one_device() does', () => {
  assert.ok(one({ classCode: 0x020000, classMask: 0xffffff }));
  assert.not.ok(one({ classCode: 0x020001, classMask: 0xffffff }));
  assert.ok(one({ classCode: 0x020080, classMask: 0xffff00 }), 'prog-if ignored');
  assert.ok(one({ classCode: 0x02ffff, classMask: 0xff0000 }), 'base class only');
  assert.not.ok(one({ classCode: 0x030000, classMask: 0xff0000 }));
  assert.ok(one({ classCode: 0x123456, classMask: 0 }), 'mask 0 ignores the class');
  assert.ok(one({ classCode: 0x020000 }), 'classCode alone means the full mask');
  assert.not.ok(one({ classCode: 0x020001 }));
});

test('wildcards: 4 per wildcard id plus 1 per class byte not fully masked', () => {
  const cases: Array<[IdEntry, number]> = [
    [{}, 4 * 4 + 3],
    [{ vendor: 0x8086 }, 4 * 3 + 3],
    [{ vendor: 0x8086, device: 0x10d3 }, 4 * 2 + 3],
    [{ vendor: 0x8086, device: 0x10d3, subvendor: 0x8086 }, 4 + 3],
    [{ vendor: 0x8086, device: 0x10d3, subvendor: 0x8086, subdevice: 0xa01f }, 3],
    [
      { vendor: 0x8086, device: 0x10d3, subvendor: 0x8086, subdevice: 0xa01f, classCode: 0x020000 },
      0,
    ],
    [{ classCode: 0x010802 }, 16],
    [{ classCode: 0x010800, classMask: 0xffff00 }, 17],
    [{ classCode: 0x010000, classMask: 0xff0000 }, 18],
    [{ classCode: 0x010000, classMask: 0xf00000 }, 19],
    [{ classCode: 0x010802, classMask: 0 }, 19],
    [{ vendor: 0x8086, device: 0x10d3, classCode: 0x020000 }, 8],
  ];
  for (const [entry, expected] of cases)
    assert.is(wildcards(entry), expected, JSON.stringify(entry));
});

test('the entry with the fewest wildcards wins across owners', () => {
  const tables: IdTable[] = [
    { owner: 'any-nic', entries: [{ classCode: 0x020000, classMask: 0xff0000 }] },
    { owner: 'intel', entries: [{ vendor: 0x8086 }] },
    { owner: 'e1000e', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    {
      owner: 'oem',
      entries: [{ vendor: 0x8086, device: 0x10d3, subvendor: 0x8086, subdevice: 0xa01f }],
    },
  ];
  const r = matchIdTable(NIC, tables);
  assert.equal(r, { kind: 'match', owner: 'oem', entry: tables[3]?.entries[0], wildcards: 3 });
  assert.equal(matchIdTable(NIC, tables.slice(0, 3)), {
    kind: 'match',
    owner: 'e1000e',
    entry: { vendor: 0x8086, device: 0x10d3 },
    wildcards: 11,
  });
  assert.is((matchIdTable(NIC, [...tables].reverse()) as { owner: string }).owner, 'oem');
});

test('a vendor:device entry beats a class-only entry with a full mask', () => {
  const r = matchIdTable(NVME, [
    { owner: 'nvme-generic', entries: [{ classCode: 0x010802 }] },
    { owner: 'samsung', entries: [{ vendor: 0x144d, device: 0xa808 }] },
  ]);
  assert.is(r.kind === 'match' && r.owner, 'samsung');
});

test('one more specific id outweighs the whole class criterion', () => {
  const r = matchIdTable(NIC, [
    { owner: 'by-class', entries: [{ vendor: 0x8086, device: 0x10d3, classCode: 0x020000 }] },
    { owner: 'by-subvendor', entries: [{ vendor: 0x8086, device: 0x10d3, subvendor: 0x8086 }] },
  ]);
  assert.is(r.kind === 'match' && r.owner, 'by-subvendor');
});

test('among equal ids the class makes the difference', () => {
  const r = matchIdTable(NIC, [
    { owner: 'plain', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    {
      owner: 'classy',
      entries: [{ vendor: 0x8086, device: 0x10d3, classCode: 0x020000, classMask: 0xff0000 }],
    },
  ]);
  assert.equal(r.kind === 'match' && [r.owner, r.wildcards], ['classy', 10]);
});

test('a tie between different owners is ambiguous and lists every candidate', () => {
  const a: IdEntry = { vendor: 0x8086, device: 0x10d3 };
  const b: IdEntry = { vendor: 0x8086, device: '*' };
  const r = matchIdTable(NIC, [
    { owner: 'a', entries: [a] },
    { owner: 'b', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    { owner: 'c', entries: [b] },
  ]);
  assert.equal(r, {
    kind: 'ambiguous',
    wildcards: 11,
    candidates: [
      { owner: 'a', entry: a },
      { owner: 'b', entry: { vendor: 0x8086, device: 0x10d3 } },
    ],
  });
});

test('a tie is only ambiguous at the best level: a more specific entry settles it', () => {
  const r = matchIdTable(NIC, [
    { owner: 'a', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    { owner: 'b', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    { owner: 'c', entries: [{ vendor: 0x8086, device: 0x10d3, subvendor: 0x8086 }] },
  ]);
  assert.is(r.kind === 'match' && r.owner, 'c');
});

test('equally specific entries of one owner resolve to its first entry', () => {
  const first = { vendor: 0x8086, device: 0x10d3, tag: 'first' };
  const second = { vendor: 0x8086, device: 0x10d3, tag: 'second' };
  const r = matchIdTable(NIC, [{ owner: 'x', entries: [first, second] }]);
  assert.equal(r, { kind: 'match', owner: 'x', entry: first, wildcards: 11 });
});

test('two tables with the same owner name count as one owner', () => {
  const r = matchIdTable(NIC, [
    { owner: 'x', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
    { owner: 'x', entries: [{ vendor: 0x8086, device: 0x10d3 }] },
  ]);
  assert.is(r.kind, 'match');
});

test('nothing matching, or no tables, is none', () => {
  assert.equal(matchIdTable(NIC, []), { kind: 'none' });
  assert.equal(matchIdTable(NIC, [{ owner: 'x', entries: [] }]), { kind: 'none' });
  assert.equal(matchIdTable(NIC, [{ owner: 'nvme', entries: [{ classCode: 0x010802 }] }]), {
    kind: 'none',
  });
});

test('extra fields on entries come back untouched (driver_data style)', () => {
  const entry = { vendor: 0x144d, device: 0xa808, quirks: ['no-d3'] };
  const r = matchIdTable(NVME, [{ owner: 'samsung', entries: [entry] }]);
  assert.ok(r.kind === 'match' && r.entry === entry);
  if (r.kind === 'match') assert.equal(r.entry.quirks, ['no-d3']);
});

test('malformed entries are RangeErrors naming the owner, field and value', () => {
  const bad: Array<[IdEntry, string]> = [
    [
      { vendor: 0x10000 },
      "tables[1](broken).entries[0].vendor: expected 0..0xffff, PCI_ANY_ID or '*', received 0x10000",
    ],
    [{ device: -1 }, 'entries[0].device'],
    [{ subvendor: 1.5 }, 'entries[0].subvendor'],
    [{ subdevice: 'any' as unknown as '*' }, 'received "any"'],
    [{ classCode: 0x1000000 }, 'entries[0].classCode: expected 0..0xffffff, received 0x1000000'],
    [{ classCode: 1, classMask: -1 }, 'entries[0].classMask'],
  ];
  for (const [entry, text] of bad) {
    try {
      matchIdTable(NIC, [
        { owner: 'fine', entries: [{ vendor: 0x8086 }] },
        { owner: 'broken', entries: [entry] },
      ]);
      assert.unreachable(JSON.stringify(entry));
    } catch (err) {
      assert.instance(err, RangeError);
      assert.match((err as Error).message, text);
    }
  }
});

test.run();

// SPDX-License-Identifier: MIT
// The PCI id-table matcher shared by native-device matching (which variant handles a real device)
// and plugin matching (which plugin claims a device). Entries mirror the kernel's
// struct pci_device_id (include/linux/mod_devicetable.h) and match the way pci_match_one_device()
// (drivers/pci/pci.h) does: each id equal or PCI_ANY_ID, and ((class ^ dev.class) & class_mask)
// == 0.
//
// Choosing among several matching entries follows the vfio_pci_core variant-driver idea: the most
// specific entry wins, i.e. the one with the fewest wildcards, counted as follows.
//
//   wildcards = 4 × (number of vendor/device/subvendor/subdevice that are PCI_ANY_ID)
//             +     (number of class bytes — base class, subclass, prog-if — whose mask is not 0xff)
//
// The class bytes are the three fields of the kernel's modalias (bc, sc, i in
// `pci:v…d…sv…sd…bc..sc..i..`, scripts/mod/file2alias.c do_pci_entry()), which likewise treats a
// byte as specific only when fully masked. The weight 4 makes any id wildcard outweigh the whole
// class criterion (at most 3): an id names a device, a class only a kind of device, so
// "vendor 8086 device 10d3, any class" (4·2 + 3 = 11) beats "any NVMe controller"
// (class 0x010802, mask 0xffffff: 4·4 + 0 = 16). Equivalently: compare the id wildcard count
// first and the class wildcard bytes second.
//
// A tie at the lowest count between different owners is reported as ambiguous, never guessed.
// Two equally specific entries of the same owner resolve to that owner's first one.

/** The kernel's wildcard id value (include/linux/mod_devicetable.h). */
export const PCI_ANY_ID = 0xffffffff;

/** An id in an entry: 0..0xffff, or a wildcard (PCI_ANY_ID, '*' or absent). */
export type IdValue = number | '*' | undefined;

export interface IdEntry {
  vendor?: IdValue;
  device?: IdValue;
  subvendor?: IdValue;
  subdevice?: IdValue;
  /** 24-bit class code compared under classMask */
  classCode?: number | undefined;
  /** bits of classCode that must match; default 0xffffff when classCode is set, else 0 */
  classMask?: number | undefined;
}

export interface IdTable<E extends IdEntry = IdEntry> {
  /** who the table belongs to: a plugin id, a native variant name */
  owner: string;
  entries: readonly E[];
}

/** The ids of a device, as PciDevice (host/sysfs/pci.ts) or a plugin's describe() has them. */
export interface PciIds {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemDeviceId: number;
  classCode: number;
}

export interface MatchCandidate<E extends IdEntry = IdEntry> {
  owner: string;
  entry: E;
}

export type MatchResult<E extends IdEntry = IdEntry> =
  | { kind: 'match'; owner: string; entry: E; wildcards: number }
  | { kind: 'none' }
  | { kind: 'ambiguous'; wildcards: number; candidates: Array<MatchCandidate<E>> };

/** An entry in canonical form: wildcard ids are PCI_ANY_ID, class fields always present. */
export interface CanonicalEntry {
  vendor: number;
  device: number;
  subvendor: number;
  subdevice: number;
  classCode: number;
  classMask: number;
}

const ID_FIELDS = ['vendor', 'device', 'subvendor', 'subdevice'] as const;

function hex(value: unknown): string {
  return typeof value === 'number' && Number.isInteger(value)
    ? `0x${value.toString(16)}`
    : (JSON.stringify(value) ?? String(value));
}

function canonicalId(value: IdValue, where: string): number {
  if (value === undefined || value === '*' || value === PCI_ANY_ID) return PCI_ANY_ID;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff) {
    return value;
  }
  throw new RangeError(`${where}: expected 0..0xffff, PCI_ANY_ID or '*', received ${hex(value)}`);
}

function checkClassField(value: number, where: string): number {
  if (Number.isInteger(value) && value >= 0 && value <= 0xffffff) return value;
  throw new RangeError(`${where}: expected 0..0xffffff, received ${hex(value)}`);
}

/**
 * Validates an entry and returns its canonical form.
 * @param where names the entry in errors, e.g. `tables[1].entries[0]`
 * @throws RangeError naming the field, the expected range and the value received
 */
export function canonicalEntry(entry: IdEntry, where = 'entry'): CanonicalEntry {
  const [vendor, device, subvendor, subdevice] = ID_FIELDS.map((f) =>
    canonicalId(entry[f], `${where}.${f}`),
  ) as [number, number, number, number];
  const classCode = checkClassField(entry.classCode ?? 0, `${where}.classCode`);
  const defaultMask = entry.classCode === undefined ? 0 : 0xffffff;
  const classMask = checkClassField(entry.classMask ?? defaultMask, `${where}.classMask`);
  return { vendor, device, subvendor, subdevice, classCode, classMask };
}

/** Whether `e` matches `ids`, as pci_match_one_device() decides. */
export function entryMatches(e: CanonicalEntry, ids: PciIds): boolean {
  const idOk = (want: number, have: number) => want === PCI_ANY_ID || want === have;
  return (
    idOk(e.vendor, ids.vendorId) &&
    idOk(e.device, ids.deviceId) &&
    idOk(e.subvendor, ids.subsystemVendorId) &&
    idOk(e.subdevice, ids.subsystemDeviceId) &&
    ((e.classCode ^ ids.classCode) & e.classMask) === 0
  );
}

/** The wildcard count defined at the top of this file (lower is more specific). */
export function countWildcards(e: CanonicalEntry): number {
  const ids = ID_FIELDS.filter((f) => e[f] === PCI_ANY_ID).length;
  let classBytes = 0;
  for (const shift of [16, 8, 0]) {
    if (((e.classMask >>> shift) & 0xff) !== 0xff) classBytes += 1;
  }
  return 4 * ids + classBytes;
}

/**
 * Finds the table whose most specific matching entry is the most specific overall.
 * @throws RangeError for a malformed entry (before matching anything)
 */
export function matchIdTable<E extends IdEntry>(
  device: PciIds,
  tables: ReadonlyArray<IdTable<E>>,
): MatchResult<E> {
  let best = Number.POSITIVE_INFINITY;
  let winners: Array<MatchCandidate<E>> = [];
  tables.forEach((table, t) => {
    table.entries.forEach((entry, i) => {
      const canonical = canonicalEntry(entry, `tables[${t}](${table.owner}).entries[${i}]`);
      if (!entryMatches(canonical, device)) return;
      const wildcards = countWildcards(canonical);
      if (wildcards < best) {
        best = wildcards;
        winners = [];
      }
      if (wildcards === best) winners.push({ owner: table.owner, entry });
    });
  });
  const [first] = winners;
  if (first === undefined) return { kind: 'none' };
  if (winners.every((w) => w.owner === first.owner)) {
    return { kind: 'match', owner: first.owner, entry: first.entry, wildcards: best };
  }
  return { kind: 'ambiguous', wildcards: best, candidates: winners };
}

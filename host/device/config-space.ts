// SPDX-License-Identifier: MIT
// A 256-byte conventional PCI configuration space (type 0 header) emulated from a validated
// `describe()` answer, the way libvfio-user and QEMU's hw/pci/pci.c do it: each byte has a
// power-on value, a write mask (RW bits) and a write-1-to-clear mask, so a write of any width at
// any naturally aligned offset behaves as the same writes byte by byte. Register names are
// linux/pci_regs.h's; section numbers are the PCI Local Bus Specification 3.0's.
//
// Layout: the header (0x00-0x3f), then the host's capabilities from 0x40: Power Management
// (optional), MSI (64-bit, per-vector masking) when the device has MSI vectors, MSI-X when it
// has a table. Every other offset belongs to the plugin (`device.config-read/-write`). Caps are
// 4-byte aligned with sizes that are multiples of 4, so a naturally aligned access of 1, 2 or 4
// bytes is either wholly emulated or wholly the plugin's.

import type { DeviceDescription } from '../plugins/engine.js';

/** Header offsets (linux/pci_regs.h). */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
/** PCI_STD_HEADER_SIZEOF: where the capabilities start. */
export const PCI_STD_HEADER_SIZEOF = 0x40;
export const PCI_CFG_SPACE_SIZE = 0x100;

/** PCI_COMMAND bits (6.2.2). */
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
const COMMAND_RW =
  PCI_COMMAND_IO |
  PCI_COMMAND_MEMORY |
  PCI_COMMAND_MASTER |
  PCI_COMMAND_PARITY |
  PCI_COMMAND_SERR |
  PCI_COMMAND_INTX_DISABLE;

/** PCI_STATUS bits (6.2.3). */
export const PCI_STATUS_INTERRUPT = 0x08;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_STATUS_PARITY = 0x100;
export const PCI_STATUS_SIG_TARGET_ABORT = 0x800;
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000;
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000;
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000;
export const PCI_STATUS_DETECTED_PARITY = 0x8000;
/** The error bits software clears by writing 1 (6.2.3). */
export const STATUS_RW1C =
  PCI_STATUS_PARITY |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_DETECTED_PARITY;

/** BAR type bits (6.2.5.1). */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;

/** Capability IDs and layouts (linux/pci_regs.h). */
export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_LIST_NEXT = 1;
export const PCI_PM_PMC = 2;
export const PCI_PM_CTRL = 4;
export const PCI_PM_CTRL_STATE_MASK = 0x3;
export const PCI_PM_CTRL_NO_SOFT_RESET = 0x8;
export const PCI_PM_SIZEOF = 8;
export const PCI_MSI_FLAGS = 2;
export const PCI_MSI_FLAGS_ENABLE = 0x1;
export const PCI_MSI_FLAGS_QMASK = 0x0e;
export const PCI_MSI_FLAGS_QSIZE = 0x70;
export const PCI_MSI_FLAGS_64BIT = 0x80;
export const PCI_MSI_FLAGS_MASKBIT = 0x100;
export const PCI_MSI_ADDRESS_LO = 4;
export const PCI_MSI_ADDRESS_HI = 8;
export const PCI_MSI_DATA_64 = 12;
export const PCI_MSI_MASK_64 = 16;
export const PCI_MSI_PENDING_64 = 20;
/** 64-bit MSI with per-vector masking: up to and including the pending bits. */
export const MSI_CAP_BYTES = 24;
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x7ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_PBA = 8;
export const PCI_MSIX_FLAGS_BIRMASK = 0x7;
export const PCI_CAP_MSIX_SIZEOF = 12;

/** Which part of the emulated space a write changed (the model reacts to these). */
export type ConfigChange = 'command' | 'msi' | 'msix' | 'pm';

/** Where offsets the host does not emulate go: the plugin's config-read/-write. */
export interface ConfigBackend {
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

export interface CapabilityInfo {
  id: number;
  offset: number;
  sizeBytes: number;
}

export interface ConfigSpaceOptions {
  /** Add a Power Management capability (D0/D3hot only, No_Soft_Reset set). Default false. */
  pm?: boolean;
  backend?: ConfigBackend;
  onChange?: (what: ConfigChange) => void;
}

const NO_BACKEND: ConfigBackend = { read: () => 0, write: () => undefined };

export class ConfigSpace {
  readonly caps: readonly CapabilityInfo[];
  readonly pmOffset: number | undefined;
  readonly msiOffset: number | undefined;
  readonly msixOffset: number | undefined;
  readonly msiVectors: number;
  readonly #bytes = new Uint8Array(PCI_CFG_SPACE_SIZE);
  readonly #initial = new Uint8Array(PCI_CFG_SPACE_SIZE);
  readonly #rw = new Uint8Array(PCI_CFG_SPACE_SIZE);
  readonly #w1c = new Uint8Array(PCI_CFG_SPACE_SIZE);
  /** 1 where the host emulates the byte. */
  readonly #emulated = new Uint8Array(PCI_CFG_SPACE_SIZE);
  readonly #backend: ConfigBackend;
  readonly #onChange: ((what: ConfigChange) => void) | undefined;

  constructor(desc: DeviceDescription, opts: ConfigSpaceOptions = {}) {
    this.#backend = opts.backend ?? NO_BACKEND;
    this.#onChange = opts.onChange;
    this.msiVectors = desc.irqs.msiVectors;
    this.#emulated.fill(1, 0, PCI_STD_HEADER_SIZEOF);
    this.#header(desc);
    this.#bars(desc);
    const caps: CapabilityInfo[] = [];
    let next = PCI_STD_HEADER_SIZEOF;
    const add = (id: number, sizeBytes: number): number => {
      const offset = next;
      caps.push({ id, offset, sizeBytes });
      next = offset + sizeBytes;
      return offset;
    };
    this.pmOffset = opts.pm ? add(PCI_CAP_ID_PM, PCI_PM_SIZEOF) : undefined;
    this.msiOffset = desc.irqs.msiVectors > 0 ? add(PCI_CAP_ID_MSI, MSI_CAP_BYTES) : undefined;
    this.msixOffset = desc.irqs.msix ? add(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF) : undefined;
    this.caps = caps;
    this.#capList(desc);
    this.#initial.set(this.#bytes);
  }

  #header(desc: DeviceDescription): void {
    this.#set(PCI_VENDOR_ID, 2, desc.vendorId);
    this.#set(PCI_DEVICE_ID, 2, desc.deviceId);
    this.#set(PCI_REVISION_ID, 1, desc.revision);
    this.#set(PCI_CLASS_PROG, 3, desc.classCode);
    this.#set(PCI_SUBSYSTEM_VENDOR_ID, 2, desc.subsystemVendorId);
    this.#set(PCI_SUBSYSTEM_ID, 2, desc.subsystemId);
    // Header type 0, single function; BIST, latency timer, CardBus CIS, ROM BAR (no ROM:
    // sizing reads 0, 6.2.5.2), Min_Gnt and Max_Lat all read as 0.
    this.#set(PCI_HEADER_TYPE, 1, 0);
    this.#mask(PCI_COMMAND, 2, COMMAND_RW);
    this.#w1cMask(PCI_STATUS, 2, STATUS_RW1C);
    // Cache Line Size is RW as on QEMU (pci_init_wmask): Linux writes it when enabling MWI.
    this.#mask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.#mask(PCI_INTERRUPT_LINE, 1, 0xff);
    const pin = desc.irqs.intx;
    this.#set(PCI_INTERRUPT_PIN, 1, pin ? 'abcd'.indexOf(pin) + 1 : 0);
  }

  /** BAR sizing (6.2.5.1): address bits below the size are RO 0, the type bits RO. */
  #bars(desc: DeviceDescription): void {
    for (const bar of desc.bars) {
      const at = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      const size = bar.sizeBytes;
      const addressMask = ~(size - 1n);
      if (bar.kind === 'io') {
        this.#set(at, 4, PCI_BASE_ADDRESS_SPACE_IO);
        this.#mask(at, 4, Number(addressMask & 0xffff_fffcn));
        continue;
      }
      const prefetch = bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0;
      const type = bar.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0;
      this.#set(at, 4, prefetch | type);
      this.#mask(at, 4, Number(addressMask & 0xffff_fff0n));
      if (bar.kind === 'mem64') this.#mask(at + 4, 4, Number((addressMask >> 32n) & 0xffff_ffffn));
    }
  }

  #capList(desc: DeviceDescription): void {
    if (this.caps.length === 0) return;
    this.#bytes[PCI_STATUS] = (this.#bytes[PCI_STATUS] ?? 0) | PCI_STATUS_CAP_LIST;
    this.#set(PCI_CAPABILITY_LIST, 1, this.caps[0]?.offset ?? 0);
    this.caps.forEach((cap, i) => {
      this.#emulated.fill(1, cap.offset, cap.offset + cap.sizeBytes);
      this.#set(cap.offset, 1, cap.id);
      this.#set(cap.offset + PCI_CAP_LIST_NEXT, 1, this.caps[i + 1]?.offset ?? 0);
    });
    if (this.pmOffset !== undefined) {
      // PMC: version 3 (PCI PM 1.2), no D1/D2, no PME. PMCSR: PowerState RW, No_Soft_Reset so a
      // D3hot -> D0 transition keeps the device's state (the host does not reset on it).
      this.#set(this.pmOffset + PCI_PM_PMC, 2, 0x3);
      this.#set(this.pmOffset + PCI_PM_CTRL, 2, PCI_PM_CTRL_NO_SOFT_RESET);
      this.#mask(this.pmOffset + PCI_PM_CTRL, 2, PCI_PM_CTRL_STATE_MASK);
    }
    const msi = this.msiOffset;
    if (msi !== undefined) {
      const mmc = Math.log2(desc.irqs.msiVectors);
      this.#set(msi + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT | (mmc << 1));
      this.#mask(msi + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
      this.#mask(msi + PCI_MSI_ADDRESS_LO, 4, 0xffff_fffc);
      this.#mask(msi + PCI_MSI_ADDRESS_HI, 4, 0xffff_ffff);
      this.#mask(msi + PCI_MSI_DATA_64, 2, 0xffff);
      // Mask bits exist for implemented vectors only (6.8.1.7); pending bits are RO.
      this.#mask(msi + PCI_MSI_MASK_64, 4, Number((1n << BigInt(desc.irqs.msiVectors)) - 1n));
    }
    const msix = this.msixOffset;
    const layout = desc.irqs.msix;
    if (msix !== undefined && layout) {
      this.#set(msix + PCI_MSIX_FLAGS, 2, layout.vectors - 1);
      this.#mask(msix + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
      this.#set(msix + PCI_MSIX_TABLE, 4, layout.tableOffset | layout.tableBar);
      this.#set(msix + PCI_MSIX_PBA, 4, layout.pbaOffset | layout.pbaBar);
    }
  }

  #set(offset: number, width: number, value: number): void {
    for (let i = 0; i < width; i++) this.#bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  #mask(offset: number, width: number, value: number): void {
    for (let i = 0; i < width; i++) this.#rw[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  #w1cMask(offset: number, width: number, value: number): void {
    for (let i = 0; i < width; i++) this.#w1c[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  #get(offset: number, width: number): number {
    let value = 0;
    for (let i = 0; i < width; i++) value |= (this.#bytes[offset + i] ?? 0) << (8 * i);
    return value >>> 0;
  }

  /** Whether the host emulates `offset` (else it is the plugin's). */
  isEmulated(offset: number): boolean {
    return this.#emulated[offset] === 1;
  }

  /** A naturally aligned read of 1, 2 or 4 bytes. */
  read(offset: number, width: 1 | 2 | 4): number {
    checkAccess(offset, width);
    if (!this.isEmulated(offset)) return this.#backend.read(offset, width) >>> 0;
    return this.#get(offset, width);
  }

  /** A naturally aligned write of 1, 2 or 4 bytes (RO bits keep their value, RW1C bits clear). */
  write(offset: number, width: 1 | 2 | 4, value: number): void {
    checkAccess(offset, width);
    if (!this.isEmulated(offset)) {
      this.#backend.write(offset, width, value >>> 0);
      return;
    }
    const before = this.#bytes.slice(offset, offset + width);
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      const rw = this.#rw[at] ?? 0;
      const old = this.#bytes[at] ?? 0;
      this.#bytes[at] = ((old & ~rw) | (byte & rw)) & ~(byte & (this.#w1c[at] ?? 0));
    }
    this.#fixups(offset, width, before);
    this.#notify(offset, width, before);
  }

  /** Register rules a byte mask cannot express. */
  #fixups(offset: number, width: number, before: Uint8Array): void {
    const msi = this.msiOffset;
    if (msi !== undefined && touches(offset, width, msi + PCI_MSI_FLAGS, 1)) {
      // Multiple Message Enable above Multiple Message Capable is clamped (QEMU msi_write_config).
      const flags = this.#get(msi + PCI_MSI_FLAGS, 2);
      const mmc = (flags & PCI_MSI_FLAGS_QMASK) >> 1;
      if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > mmc) {
        this.#set(msi + PCI_MSI_FLAGS, 2, (flags & ~PCI_MSI_FLAGS_QSIZE) | (mmc << 4));
      }
    }
    const pm = this.pmOffset;
    if (pm !== undefined && touches(offset, width, pm + PCI_PM_CTRL, 1)) {
      // D1/D2 are not supported: such a write completes and changes nothing (PCI PM 1.2, 5.4.1).
      const state = this.#get(pm + PCI_PM_CTRL, 1) & PCI_PM_CTRL_STATE_MASK;
      if (state === 1 || state === 2) {
        const old = before[pm + PCI_PM_CTRL - offset] ?? 0;
        const ctrl = this.#get(pm + PCI_PM_CTRL, 1);
        this.#set(pm + PCI_PM_CTRL, 1, (ctrl & ~PCI_PM_CTRL_STATE_MASK) | (old & 3));
      }
    }
  }

  #notify(offset: number, width: number, before: Uint8Array): void {
    if (!this.#onChange) return;
    let changed = false;
    for (let i = 0; i < width; i++) changed ||= before[i] !== this.#bytes[offset + i];
    if (!changed) return;
    if (touches(offset, width, PCI_COMMAND, 2)) this.#onChange('command');
    for (const cap of this.caps) {
      if (!touches(offset, width, cap.offset, cap.sizeBytes)) continue;
      if (cap.id === PCI_CAP_ID_MSI) this.#onChange('msi');
      if (cap.id === PCI_CAP_ID_MSIX) this.#onChange('msix');
      if (cap.id === PCI_CAP_ID_PM) this.#onChange('pm');
    }
  }

  /** Back to power-on values (an FLR or DEVICE_RESET). */
  reset(): void {
    this.#bytes.set(this.#initial);
  }

  /** A copy of all 256 bytes as the host emulates them (plugin offsets read as 0 here). */
  snapshot(): Uint8Array {
    return this.#bytes.slice();
  }

  /**
   * Takes the emulated bytes of a snapshot() back (a device model rebuilt after its worker was
   * restarted keeps what the guest programmed: command, BARs, MSI/MSI-X control), then tells
   * onChange about every part so interrupt routing follows.
   * @throws RangeError for a snapshot that is not PCI_CFG_SPACE_SIZE bytes
   */
  restore(snapshot: Uint8Array): void {
    if (snapshot.length !== PCI_CFG_SPACE_SIZE) {
      throw new RangeError(`restore: expected ${PCI_CFG_SPACE_SIZE} bytes, got ${snapshot.length}`);
    }
    for (let i = 0; i < PCI_CFG_SPACE_SIZE; i++) {
      if (this.#emulated[i]) this.#bytes[i] = snapshot[i] ?? 0;
    }
    if (!this.#onChange) return;
    this.#onChange('command');
    if (this.msiOffset !== undefined) this.#onChange('msi');
    if (this.msixOffset !== undefined) this.#onChange('msix');
    if (this.pmOffset !== undefined) this.#onChange('pm');
  }

  get command(): number {
    return this.#get(PCI_COMMAND, 2);
  }

  get intxDisabled(): boolean {
    return (this.command & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /** PCI_STATUS_INTERRUPT mirrors the INTx line, whatever INTX_DISABLE says (6.2.3). */
  setIntxStatus(asserted: boolean): void {
    const low = this.#bytes[PCI_STATUS] ?? 0;
    this.#bytes[PCI_STATUS] = asserted ? low | PCI_STATUS_INTERRUPT : low & ~PCI_STATUS_INTERRUPT;
  }

  /** Latch RW1C error bits (e.g. PCI_STATUS_REC_MASTER_ABORT for a failed DMA). */
  raiseStatus(bits: number): void {
    const status = this.#get(PCI_STATUS, 2) | (bits & STATUS_RW1C);
    this.#set(PCI_STATUS, 2, status);
  }

  get msiEnabled(): boolean {
    const msi = this.msiOffset;
    return msi !== undefined && (this.#get(msi + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  /** Vectors the guest enabled: 2^(Multiple Message Enable). */
  get msiEnabledVectors(): number {
    const msi = this.msiOffset;
    if (msi === undefined) return 0;
    return 1 << ((this.#get(msi + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_QSIZE) >> 4);
  }

  msiMasked(vector: number): boolean {
    const msi = this.msiOffset;
    if (msi === undefined || vector >= 32) return true;
    return ((this.#get(msi + PCI_MSI_MASK_64, 4) >>> vector) & 1) === 1;
  }

  msiPending(vector: number): boolean {
    const msi = this.msiOffset;
    if (msi === undefined || vector >= 32) return false;
    return ((this.#get(msi + PCI_MSI_PENDING_64, 4) >>> vector) & 1) === 1;
  }

  setMsiPending(vector: number, pending: boolean): void {
    const msi = this.msiOffset;
    if (msi === undefined || vector >= 32) return;
    const bits = this.#get(msi + PCI_MSI_PENDING_64, 4);
    const bit = 1 << vector;
    this.#set(msi + PCI_MSI_PENDING_64, 4, pending ? bits | bit : bits & ~bit);
  }

  get msixEnabled(): boolean {
    const msix = this.msixOffset;
    return (
      msix !== undefined && (this.#get(msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0
    );
  }

  get msixFunctionMasked(): boolean {
    const msix = this.msixOffset;
    return (
      msix !== undefined && (this.#get(msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_MASKALL) !== 0
    );
  }

  /** The offset of the first capability with `id`, walking the list as a driver does. */
  findCapability(id: number): number | undefined {
    let at = this.#get(PCI_CAPABILITY_LIST, 1);
    for (let hops = 0; at >= PCI_STD_HEADER_SIZEOF && hops < 48; hops++) {
      if (this.#get(at, 1) === id) return at;
      at = this.#get(at + PCI_CAP_LIST_NEXT, 1);
    }
    return undefined;
  }
}

function touches(offset: number, width: number, start: number, len: number): boolean {
  return offset < start + len && start < offset + width;
}

function checkAccess(offset: number, width: number): void {
  if (
    !Number.isInteger(offset) ||
    offset < 0 ||
    offset + width > PCI_CFG_SPACE_SIZE ||
    offset % width !== 0
  ) {
    throw new RangeError(
      `config access: expected a naturally aligned ${width}-byte access inside 256 bytes, got offset ${offset}`,
    );
  }
}

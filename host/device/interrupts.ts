// SPDX-License-Identifier: MIT
// Interrupt delivery for one device: a plugin raises "vector n" and this decides, from what the
// guest enabled in config space, whether that becomes an MSI-X message, an MSI message, the
// INTx line, or a pending bit (QEMU's msix_notify / msi_notify / pci_set_irq split). It also
// holds the MSI-X table and pending-bit array, which the host emulates (the plugin never sees
// accesses to them). Sections are the PCI Local Bus Specification 3.0's.
//
// The transport's own masks (vfio SET_IRQS ACTION_MASK/UNMASK, `clientState`) act like the
// guest's: a vector masked either way is held pending and sent when both unmask it.
//
// INTx is level-triggered (6.2.4): the line is signalled on assertion, and again whenever it is
// still asserted when it becomes deliverable (INTX_DISABLE cleared: uio_pci_generic relies on
// this; or an ACTION_UNMASK, which is how a client using vfio's AUTOMASKED INTx re-arms it).

import type { DeviceDescription, MsixLayout } from '../plugins/engine.js';
import type { ConfigChange, ConfigSpace } from './config-space.js';
import { MSIX_ENTRY_BYTES, msixPbaBytes } from './describe.js';
import { IRQ_INTX, IRQ_MSI, IRQ_MSIX, type IrqSink } from './types.js';

/** PCI_MSIX_ENTRY_VECTOR_CTRL and its mask bit (linux/pci_regs.h). */
const PCI_MSIX_ENTRY_VECTOR_CTRL = 12;
const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;

export type IrqAction = 'mask' | 'unmask' | 'trigger';

/**
 * What a device model rebuilt after a worker restart must keep of its interrupt routing (the
 * guest's and the transport's state, which live on): the MSI-X table as the guest programmed
 * it and the transport's SET_IRQS masks. Pending bits are not kept: a vector pending at the
 * restart is lost, like a message in flight.
 */
export interface IrqSnapshot {
  /** the MSI-X table, vectors x 16 bytes (empty without MSI-X) */
  msixTable: Uint8Array;
  /** [irq index, masked vectors] of the transport's ACTION_MASK */
  clientMasked: Array<[number, number[]]>;
}

export interface IrqCounters {
  /** Signals the sink accepted. */
  irqs: number;
  /** Signals lost: no sink, nothing armed, or a vector the guest did not enable. */
  irqsDropped: number;
  /** Raises held as a pending bit because the vector was masked. */
  irqsPended: number;
}

export class InterruptRouter {
  sink: IrqSink | undefined;
  readonly counters: IrqCounters = { irqs: 0, irqsDropped: 0, irqsPended: 0 };
  readonly msix: MsixLayout | undefined;
  readonly #cfg: ConfigSpace;
  readonly #hasIntx: boolean;
  readonly #table: Uint8Array;
  readonly #pba: Uint8Array;
  #intxAsserted = false;
  /** Vectors the transport masked, by irq index. */
  readonly #clientMasked = new Map<number, Set<number>>();

  constructor(desc: DeviceDescription, cfg: ConfigSpace) {
    this.#cfg = cfg;
    this.#hasIntx = desc.irqs.intx !== undefined;
    this.msix = desc.irqs.msix;
    const vectors = this.msix?.vectors ?? 0;
    this.#table = new Uint8Array(vectors * MSIX_ENTRY_BYTES);
    this.#pba = new Uint8Array(msixPbaBytes(vectors));
    this.#resetTable();
  }

  get intxAsserted(): boolean {
    return this.#intxAsserted;
  }

  /** Which emulated MSI-X structure [offset, offset+width) of `bar` falls in, if any. */
  /** [bar, offset, length] of the emulated MSI-X table and PBA (none without MSI-X) */
  msixRanges(): [number, number, number][] {
    const m = this.msix;
    if (!m) return [];
    return [
      [m.tableBar, m.tableOffset, this.#table.length],
      [m.pbaBar, m.pbaOffset, this.#pba.length],
    ];
  }

  msixPart(bar: number, offset: number, width: number): 'table' | 'pba' | 'partial' | undefined {
    const m = this.msix;
    if (!m) return undefined;
    const parts = [
      { bar: m.tableBar, start: m.tableOffset, len: this.#table.length, name: 'table' as const },
      { bar: m.pbaBar, start: m.pbaOffset, len: this.#pba.length, name: 'pba' as const },
    ];
    for (const p of parts) {
      if (p.bar !== bar || offset >= p.start + p.len || p.start >= offset + width) continue;
      return offset >= p.start && offset + width <= p.start + p.len ? p.name : 'partial';
    }
    return undefined;
  }

  /** Reads emulated MSI-X bytes; `part` from msixPart(). */
  msixRead(part: 'table' | 'pba', offset: number, out: Uint8Array): void {
    const m = this.msix;
    if (!m) return;
    const src = part === 'table' ? this.#table : this.#pba;
    const start = offset - (part === 'table' ? m.tableOffset : m.pbaOffset);
    out.set(src.subarray(start, start + out.length));
  }

  /** Writes emulated MSI-X bytes: the PBA is RO (6.8.2.7), reserved Vector Control bits RO 0. */
  msixWrite(part: 'table' | 'pba', offset: number, data: Uint8Array): void {
    const m = this.msix;
    if (!m || part === 'pba') return;
    const start = offset - m.tableOffset;
    for (let i = 0; i < data.length; i++) {
      const at = start + i;
      const inEntry = at % MSIX_ENTRY_BYTES;
      let byte = data[i] ?? 0;
      if (inEntry >= PCI_MSIX_ENTRY_VECTOR_CTRL) {
        byte = inEntry === PCI_MSIX_ENTRY_VECTOR_CTRL ? byte & PCI_MSIX_ENTRY_CTRL_MASKBIT : 0;
      }
      this.#table[at] = byte;
    }
    const first = Math.floor(start / MSIX_ENTRY_BYTES);
    const last = Math.floor((start + data.length - 1) / MSIX_ENTRY_BYTES);
    for (let v = first; v <= last; v++) this.#flushMsix(v);
  }

  msixVectorMasked(vector: number): boolean {
    const ctrl = this.#table[vector * MSIX_ENTRY_BYTES + PCI_MSIX_ENTRY_VECTOR_CTRL] ?? 1;
    return (ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  msixPending(vector: number): boolean {
    return (((this.#pba[vector >> 3] ?? 0) >> (vector & 7)) & 1) === 1;
  }

  #setMsixPending(vector: number, pending: boolean): void {
    const byte = this.#pba[vector >> 3] ?? 0;
    const bit = 1 << (vector & 7);
    this.#pba[vector >> 3] = pending ? byte | bit : byte & ~bit;
  }

  #client(index: number, vector: number): boolean {
    return this.#clientMasked.get(index)?.has(vector) ?? false;
  }

  #deliver(index: number, sub: number): void {
    if (this.sink?.trigger(index, sub)) this.counters.irqs++;
    else this.counters.irqsDropped++;
  }

  /** `irq.raise(vector)`: the caller checked vector < the device's vector count. */
  raise(vector: number): void {
    const cfg = this.#cfg;
    if (this.msix && cfg.msixEnabled) {
      if (vector >= this.msix.vectors) this.counters.irqsDropped++;
      else if (this.#msixMasked(vector)) this.#pend(() => this.#setMsixPending(vector, true));
      else this.#deliver(IRQ_MSIX, vector);
    } else if (cfg.msiEnabled) {
      // A vector above Multiple Message Enable has no message of its own (6.8.1.3).
      if (vector >= cfg.msiEnabledVectors) this.counters.irqsDropped++;
      else if (cfg.msiMasked(vector) || this.#client(IRQ_MSI, vector)) {
        this.#pend(() => cfg.setMsiPending(vector, true));
      } else this.#deliver(IRQ_MSI, vector);
    } else if (this.#hasIntx && vector === 0) {
      if (this.#intxAsserted) return;
      this.#intxAsserted = true;
      cfg.setIntxStatus(true);
      this.#signalIntx();
    } else {
      this.counters.irqsDropped++;
    }
  }

  #pend(set: () => void): void {
    set();
    this.counters.irqsPended++;
  }

  #msixMasked(vector: number): boolean {
    return (
      this.#cfg.msixFunctionMasked ||
      this.msixVectorMasked(vector) ||
      this.#client(IRQ_MSIX, vector)
    );
  }

  #signalIntx(): void {
    if (this.#intxAsserted && !this.#cfg.intxDisabled && !this.#client(IRQ_INTX, 0)) {
      this.#deliver(IRQ_INTX, 0);
    }
  }

  /** `irq.lower(vector)`: deasserts INTx; MSI and MSI-X are edge messages, nothing to do. */
  lower(vector: number): void {
    if (vector === 0) this.#deassertIntx();
  }

  #deassertIntx(): void {
    this.#intxAsserted = false;
    this.#cfg.setIntxStatus(false);
  }

  /** `irq.is-masked(vector)` for the mechanism the guest enabled; unknown vectors are masked. */
  isMasked(vector: number): boolean {
    const cfg = this.#cfg;
    if (this.msix && cfg.msixEnabled)
      return vector >= this.msix.vectors || this.#msixMasked(vector);
    if (cfg.msiEnabled) {
      return (
        vector >= cfg.msiEnabledVectors || cfg.msiMasked(vector) || this.#client(IRQ_MSI, vector)
      );
    }
    return !this.#hasIntx || vector !== 0 || cfg.intxDisabled || this.#client(IRQ_INTX, 0);
  }

  /** A config write changed `what`: deliver what just became deliverable. */
  onConfigChange(what: ConfigChange): void {
    const cfg = this.#cfg;
    if (what === 'command') this.#signalIntx();
    if (what === 'msi' && cfg.msiEnabled) {
      // With MSI (or MSI-X) enabled the function must not use INTx# (6.8.1.3, 6.8.2.3): QEMU
      // deasserts the line on enable, and so does this.
      this.#deassertIntx();
      for (let v = 0; v < cfg.msiVectors; v++) this.#flushMsi(v);
    }
    if (what === 'msix' && cfg.msixEnabled) {
      this.#deassertIntx();
      for (let v = 0; v < (this.msix?.vectors ?? 0); v++) this.#flushMsix(v);
    }
  }

  #flushMsi(vector: number): void {
    const cfg = this.#cfg;
    if (!cfg.msiEnabled || vector >= cfg.msiEnabledVectors || !cfg.msiPending(vector)) return;
    if (cfg.msiMasked(vector) || this.#client(IRQ_MSI, vector)) return;
    cfg.setMsiPending(vector, false);
    this.#deliver(IRQ_MSI, vector);
  }

  #flushMsix(vector: number): void {
    if (!this.#cfg.msixEnabled || !this.msixPending(vector) || this.#msixMasked(vector)) return;
    this.#setMsixPending(vector, false);
    this.#deliver(IRQ_MSIX, vector);
  }

  /** The transport's SET_IRQS ACTION_MASK / ACTION_UNMASK / ACTION_TRIGGER (DATA_NONE). */
  clientState(index: number, start: number, count: number, action: IrqAction): void {
    let set = this.#clientMasked.get(index);
    if (!set) {
      set = new Set();
      this.#clientMasked.set(index, set);
    }
    for (let v = start; v < start + count; v++) {
      if (action === 'trigger') this.#deliver(index, v);
      else if (action === 'mask') set.add(v);
      else {
        set.delete(v);
        if (index === IRQ_INTX && v === 0) this.#signalIntx();
        if (index === IRQ_MSI) this.#flushMsi(v);
        if (index === IRQ_MSIX) this.#flushMsix(v);
      }
    }
  }

  /** The transport went away: its masks go with it. */
  clearClientState(): void {
    this.#clientMasked.clear();
  }

  snapshot(): IrqSnapshot {
    return {
      msixTable: this.#table.slice(),
      clientMasked: [...this.#clientMasked]
        .filter(([, set]) => set.size > 0)
        .map(([index, set]) => [index, [...set].sort((a, b) => a - b)]),
    };
  }

  /**
   * Takes a snapshot() of the same device back (before the transport attaches; nothing is
   * delivered here).
   * @throws RangeError for a table of another size or vectors outside `vectorCounts`
   *   (irq index -> vectors, as the device's irq layout has them)
   */
  restore(s: IrqSnapshot, vectorCounts: readonly number[]): void {
    if (s.msixTable.length !== this.#table.length) {
      throw new RangeError(
        `restore: expected a ${this.#table.length}-byte MSI-X table, got ${s.msixTable.length}`,
      );
    }
    for (const [index, vectors] of s.clientMasked) {
      const count = vectorCounts[index] ?? 0;
      if (!vectors.every((v) => Number.isInteger(v) && v >= 0 && v < count)) {
        throw new RangeError(`restore: masked vectors outside irq index ${index} (${count})`);
      }
    }
    this.#table.set(s.msixTable);
    this.#clientMasked.clear();
    for (const [index, vectors] of s.clientMasked) this.#clientMasked.set(index, new Set(vectors));
  }

  /** Device reset: line deasserted, table masked, nothing pending (6.8.2.9). */
  reset(): void {
    this.#deassertIntx();
    this.#resetTable();
  }

  #resetTable(): void {
    this.#table.fill(0);
    this.#pba.fill(0);
    for (let v = 0; v < (this.msix?.vectors ?? 0); v++) {
      this.#table[v * MSIX_ENTRY_BYTES + PCI_MSIX_ENTRY_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
  }
}

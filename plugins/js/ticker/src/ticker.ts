// SPDX-License-Identifier: MIT
// ticker: a periodic-timer, doorbell and random-number device, the reference TypeScript plugin
// (componentize-js, world vfiobox:device/emulated-device@0.1.0). It is the JS counterpart of a
// "pci-testdev"-style scratch device: every register is a few lines, and the cost that matters
// is the per-call one (README.md "Cost").
//
// Identity: 1234:7469 ("ti"), subsystem 1af4:1100, class 0x00ff00 (other), revision 1.
// BAR0: 4 KiB, 32-bit memory, not prefetchable. Interrupts: INTx pin A and one MSI vector;
// everything signals vector 0 (the host picks MSI or INTx as the guest enabled).
//
// Register map (BAR0). Registers are 32 bits; 1-, 2- and 8-byte accesses read all-ones and
// writes are dropped (as QEMU does outside a region's access sizes). Unlisted offsets read
// all-ones, writes are dropped. A misaligned access is `invalid-width`, outside BAR0 `out-of-range`.
//
//   off   name        access  behaviour
//   0x00  ID          RO      0x6b636974 ("tick" in little-endian bytes)
//   0x04  VERSION     RO      0x00010000 (1.0)
//   0x08  SCRATCH     RW      plain storage, 0 after reset
//   0x0c  DOORBELL    WO      a non-zero value v: IRQ_STATUS |= v, then signal the interrupt
//   0x10  IRQ_STATUS  RO      latched causes: bit 0 a timer tick (with CONTROL bit 1), others
//                             as rung through DOORBELL
//   0x14  IRQ_ACK     WO      clears the bits written; INTx is deasserted when none is left
//   0x18  PERIOD_US   RW      tick period in microseconds, 10 to 10_000_000; 0 means none; other
//                             values are clamped into that range (and a warning printed with
//                             console.warn); a write while running restarts the period from now
//   0x1c  CONTROL     RW      bit 0 run (ticks every PERIOD_US while set and PERIOD_US != 0),
//                             bit 1 interrupt on every tick; other bits read 0
//   0x20  TICKS       RW      ticks since reset (wraps at 2^32); a write sets it
//   0x24  RANDOM      RO      32 fresh random bits per read (Math.random, which is
//                             wasi:random get-random-u64 underneath)
//   0x28  UPTIME_US   RO      microseconds since reset by the vfiobox clock (wraps at 2^32)
//
// State (save-state): "TIK1", version 1, then SCRATCH, IRQ_STATUS, PERIOD_US, CONTROL, TICKS as
// u32 and the uptime in ns as u64, little-endian: 36 bytes. load-state re-arms the tick timer.
// Nothing runs at module top level that calls the host: componentize-js runs it at build time
// (Wizer snapshot), where no import exists.

import { cancelTimer, nowNs, setTimer } from 'vfiobox:device/clock@0.1.0';
import type * as Device from 'vfiobox:device/device@0.1.0';
import { lower, raise } from 'vfiobox:device/irq@0.1.0';
import { log } from 'vfiobox:device/log@0.1.0';

const BAR0_BYTES = 4096n;
const REG = {
  id: 0x00,
  version: 0x04,
  scratch: 0x08,
  doorbell: 0x0c,
  irqStatus: 0x10,
  irqAck: 0x14,
  periodUs: 0x18,
  control: 0x1c,
  ticks: 0x20,
  random: 0x24,
  uptimeUs: 0x28,
} as const;
const ID = 0x6b636974;
const VERSION = 0x00010000;
const CONTROL_RUN = 0x1;
const CONTROL_IRQ = 0x2;
const IRQ_TICK = 0x1;
const PERIOD_MIN_US = 10;
const PERIOD_MAX_US = 10_000_000;
const TICK_TIMER = 1;
const VECTOR = 0;
const ALL_ONES = 0xffffffffn;
const STATE_MAGIC = 0x314b4954; // "TIK1"
const STATE_VERSION = 1;
const STATE_BYTES = 36;

interface Registers {
  scratch: number;
  irqStatus: number;
  periodUs: number;
  control: number;
  ticks: number;
  /** nowNs() at the last reset (the clock's own origin, instantiation, before any) */
  originNs: bigint;
}

const regs: Registers = {
  scratch: 0,
  irqStatus: 0,
  periodUs: 0,
  control: 0,
  ticks: 0,
  originNs: 0n,
};

function powerOn(): void {
  Object.assign(regs, { scratch: 0, irqStatus: 0, periodUs: 0, control: 0, ticks: 0 });
  regs.originNs = nowNs();
}

/** Signals vector 0; a refusal (not granted, masked config) is logged, not fatal. */
function signal(): void {
  try {
    raise(VECTOR);
  } catch (err) {
    log('warn', `ticker: irq.raise refused: ${String(err)}`);
  }
}

function running(): boolean {
  return (regs.control & CONTROL_RUN) !== 0 && regs.periodUs !== 0;
}

/** Arms the tick timer one period from now, or disarms it when not running. */
function rearm(): void {
  if (running()) setTimer(TICK_TIMER, BigInt(regs.periodUs) * 1000n);
  else cancelTimer(TICK_TIMER);
}

function clampPeriod(us: number): number {
  if (us === 0) return 0;
  const clamped = Math.min(PERIOD_MAX_US, Math.max(PERIOD_MIN_US, us));
  // console.* reaches the host log through WASI stdout/stderr (host/plugins/wasi).
  if (clamped !== us) console.warn(`ticker: PERIOD_US ${us} clamped to ${clamped}`);
  return clamped;
}

/** Checks an access against BAR0; returns false for a width the registers do not decode. */
function check(bar: number, offset: bigint, width: number): boolean {
  if (width !== 1 && width !== 2 && width !== 4 && width !== 8) throw 'invalid-width';
  if (offset % BigInt(width) !== 0n) throw 'invalid-width';
  if (bar !== 0 || offset + BigInt(width) > BAR0_BYTES) throw 'out-of-range';
  return width === 4;
}

/**
 * Math.random, which StarlingMonkey feeds from wasi:random get-random-u64 on every call. Not
 * crypto.getRandomValues: with componentize-js 0.18.5 it traps ("null function or function
 * signature mismatch") after about 700 calls in one instance, whatever the host's WASI random
 * implementation (README.md "Known problems").
 */
function randomU32(): number {
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}

function readReg(offset: number): number {
  switch (offset) {
    case REG.id:
      return ID;
    case REG.version:
      return VERSION;
    case REG.scratch:
      return regs.scratch;
    case REG.irqStatus:
      return regs.irqStatus;
    case REG.periodUs:
      return regs.periodUs;
    case REG.control:
      return regs.control;
    case REG.ticks:
      return regs.ticks;
    case REG.random:
      return randomU32();
    case REG.uptimeUs:
      return Number(((nowNs() - regs.originNs) / 1000n) & ALL_ONES);
    default:
      return -1;
  }
}

function writeReg(offset: number, value: number): void {
  switch (offset) {
    case REG.scratch:
      regs.scratch = value;
      break;
    case REG.doorbell:
      if (value === 0) break;
      regs.irqStatus = (regs.irqStatus | value) >>> 0;
      signal();
      break;
    case REG.irqAck: {
      const before = regs.irqStatus;
      regs.irqStatus = (regs.irqStatus & ~value) >>> 0;
      if (before !== 0 && regs.irqStatus === 0) lower(VECTOR);
      break;
    }
    case REG.periodUs:
      regs.periodUs = clampPeriod(value);
      rearm();
      break;
    case REG.control: {
      const wasRunning = running();
      regs.control = value & (CONTROL_RUN | CONTROL_IRQ);
      if (running() !== wasRunning) rearm();
      break;
    }
    case REG.ticks:
      regs.ticks = value;
      break;
    default:
      break; // Read-only or unimplemented: dropped.
  }
}

function saveState(): Uint8Array {
  const out = new Uint8Array(STATE_BYTES);
  const view = new DataView(out.buffer);
  const words = [STATE_MAGIC, STATE_VERSION, regs.scratch, regs.irqStatus, regs.periodUs];
  words.push(regs.control, regs.ticks);
  words.forEach((w, i) => {
    view.setUint32(i * 4, w, true);
  });
  view.setBigUint64(28, nowNs() - regs.originNs, true);
  return out;
}

function loadState(state: Uint8Array): void {
  if (state.length !== STATE_BYTES) throw `ticker state: wrong size ${state.length}`;
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  if (view.getUint32(0, true) !== STATE_MAGIC) throw 'ticker state: bad magic';
  const version = view.getUint32(4, true);
  if (version !== STATE_VERSION) throw `ticker state: unsupported version ${version}`;
  const word = (i: number) => view.getUint32(8 + i * 4, true);
  regs.scratch = word(0);
  regs.irqStatus = word(1);
  regs.periodUs = clampPeriod(word(2));
  regs.control = word(3) & (CONTROL_RUN | CONTROL_IRQ);
  regs.ticks = word(4);
  regs.originNs = nowNs() - view.getBigUint64(28, true);
  rearm();
}

export const device: typeof Device = {
  describe() {
    return {
      vendorId: 0x1234,
      deviceId: 0x7469,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      classCode: 0x00ff00,
      revision: 1,
      bars: [{ index: 0, sizeBytes: BAR0_BYTES, kind: 'mem32', prefetchable: false }],
      irqs: { intx: 'a', msiVectors: 1 }, // msix omitted: none
      claimedRanges: [],
    };
  },
  configRead: () => 0,
  configWrite() {},
  regionRead(bar, offset, width) {
    if (!check(bar, offset, width)) return (1n << BigInt(width * 8)) - 1n;
    return BigInt(readReg(Number(offset)) >>> 0);
  },
  regionWrite(bar, offset, width, value) {
    if (!check(bar, offset, width)) return;
    writeReg(Number(offset), Number(value & ALL_ONES));
  },
  reset: powerOn,
  timer(id) {
    if (id !== TICK_TIMER || !running()) return;
    regs.ticks = (regs.ticks + 1) >>> 0;
    if (regs.control & CONTROL_IRQ) {
      regs.irqStatus = (regs.irqStatus | IRQ_TICK) >>> 0;
      signal();
    }
    rearm();
  },
  saveState,
  loadState,
  streamReady() {},
};

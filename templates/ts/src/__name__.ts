// SPDX-License-Identifier: MIT
// {{name}}: a vfiobox device model in TypeScript (world vfiobox:device/emulated-device@0.1.0,
// built with componentize-js). Start here: change the identity (VENDOR_ID, DEVICE_ID,
// CLASS_CODE), then the registers.
//
// Register map (BAR0: 4 KiB, 32-bit memory, not prefetchable). Registers are 32 bits; 1-, 2- and
// 8-byte accesses read all-ones and writes are dropped, as are unlisted offsets. A misaligned
// access is `invalid-width`, one outside BAR0 `out-of-range`.
//
//   off   name        access  behaviour
//   0x00  ID          RO      DEVICE_ID << 16 | VENDOR_ID
//   0x04  SCRATCH     RW      plain storage, 0 after reset
//   0x08  IRQ_RAISE   WO      a non-zero value v: IRQ_STATUS |= v, then signal interrupt vector 0
//   0x0c  IRQ_STATUS  RO      the causes latched by IRQ_RAISE
//   0x10  IRQ_ACK     WO      clears the bits written; INTx is deasserted when none is left
//
// Interrupts: INTx pin A and one MSI vector; the host delivers vector 0 as MSI when the guest
// enabled it, else as INTx. Calls come one at a time: no locking. An `err` result is a thrown
// string (the WIT case name). Do not call the host at module top level: componentize-js runs it
// at build time, where no import exists.

import type * as Device from 'vfiobox:device/device@0.1.0';
import { lower, raise } from 'vfiobox:device/irq@0.1.0';
import { log } from 'vfiobox:device/log@0.1.0';

// EDIT: your device's identity. 0x1234 / 0x0001 are placeholders (0x1234 is the vendor ID QEMU
// uses for its own test devices): use IDs you may use, and change manifest.json "ids" and the
// ID reads in test/basic.trace.jsonl to match.
const VENDOR_ID = 0x1234;
const DEVICE_ID = 0x0001;
const SUBSYSTEM_VENDOR_ID = 0x1234;
const SUBSYSTEM_ID = 0x0001;
const CLASS_CODE = 0x00ff00; // PCI_CLASS_OTHERS << 8, prog-if 0.
const REVISION = 0x01;

const BAR0_BYTES = 4096n;
const VECTOR = 0;
const REG = { id: 0x00, scratch: 0x04, irqRaise: 0x08, irqStatus: 0x0c, irqAck: 0x10 } as const;
const STATE_MAGIC = 0x31564544; // "DEV1"
const STATE_BYTES = 12;

const dev = { scratch: 0, irqStatus: 0 };

/** Throws the access-error case for an access the device refuses; true if 4 bytes wide. */
function check(bar: number, offset: bigint, width: number): boolean {
  const widthOk = width === 1 || width === 2 || width === 4 || width === 8;
  if (!widthOk || offset % BigInt(width) !== 0n) throw 'invalid-width';
  if (bar !== 0 || offset + BigInt(width) > BAR0_BYTES) throw 'out-of-range';
  return width === 4;
}

function readRegister(offset: number): number {
  switch (offset) {
    case REG.id:
      return ((DEVICE_ID << 16) | VENDOR_ID) >>> 0;
    case REG.scratch:
      return dev.scratch;
    case REG.irqStatus:
      return dev.irqStatus;
    default:
      return 0xffffffff;
  }
}

function writeRegister(offset: number, value: number): void {
  switch (offset) {
    case REG.scratch:
      dev.scratch = value;
      break;
    case REG.irqRaise:
      if (value === 0) break;
      dev.irqStatus = (dev.irqStatus | value) >>> 0;
      try {
        raise(VECTOR);
      } catch (err) {
        log('warn', `{{name}}: irq raise refused: ${String(err)}`);
      }
      break;
    case REG.irqAck:
      if (dev.irqStatus === 0) break;
      dev.irqStatus = (dev.irqStatus & ~value) >>> 0;
      if (dev.irqStatus === 0) lower(VECTOR);
      break;
    default:
      break; // Read-only or unimplemented: dropped.
  }
}

export const device: typeof Device = {
  describe() {
    return {
      vendorId: VENDOR_ID,
      deviceId: DEVICE_ID,
      subsystemVendorId: SUBSYSTEM_VENDOR_ID,
      subsystemId: SUBSYSTEM_ID,
      classCode: CLASS_CODE,
      revision: REVISION,
      bars: [{ index: 0, sizeBytes: BAR0_BYTES, kind: 'mem32', prefetchable: false }],
      irqs: { intx: 'a', msiVectors: 1 }, // no `msix`: the device has none
      claimedRanges: [],
    };
  },
  // No device-specific config registers: the host emulates the header and the MSI capability.
  configRead: () => 0,
  configWrite() {},
  regionRead(bar, offset, width) {
    if (!check(bar, offset, width)) return (1n << BigInt(width * 8)) - 1n;
    return BigInt(readRegister(Number(offset)));
  },
  regionWrite(bar, offset, width, value) {
    if (check(bar, offset, width)) writeRegister(Number(offset), Number(value & 0xffffffffn));
  },
  reset() {
    // The host has already cancelled the plugin's timers and lowered its interrupt.
    dev.scratch = 0;
    dev.irqStatus = 0;
  },
  timer() {},
  saveState() {
    const out = new Uint8Array(STATE_BYTES);
    const view = new DataView(out.buffer);
    [STATE_MAGIC, dev.scratch, dev.irqStatus].forEach((w, i) => {
      view.setUint32(i * 4, w, true);
    });
    return out;
  },
  loadState(state) {
    const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
    if (state.length !== STATE_BYTES || view.getUint32(0, true) !== STATE_MAGIC) {
      throw '{{name}}: not a saved state of this device';
    }
    dev.scratch = view.getUint32(4, true);
    dev.irqStatus = view.getUint32(8, true);
  },
  streamReady() {},
};

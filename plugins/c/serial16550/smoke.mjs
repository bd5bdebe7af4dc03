// SPDX-License-Identifier: MIT
// Smoke check of build/serial16550.wasm through jco's JS glue, with stub host imports: the
// probes Linux's 8250 core runs (8250_port.c autoconfig and serial8250_do_startup), loopback,
// the byte stream both ways, interrupts, the character timeout, FIFOs, DLAB and save/load.
//
//   jco transpile build/serial16550.wasm -o build/jco --instantiation sync \
//     --no-namespaced-exports --valid-lifting-optimization --no-typescript
//   node smoke.mjs build/jco            # prints "N passed, N failed"
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? 'build/jco');
const { instantiate } = await import(pathToFileURL(join(dir, 'serial16550.js')).href);

// serial_reg.h offsets and bits.
const REG = { rbr: 0, thr: 0, dll: 0, ier: 1, dlm: 1, iir: 2, fcr: 2, lcr: 3, mcr: 4 };
Object.assign(REG, { lsr: 5, msr: 6, scr: 7 });
const IIR = { none: 0x01, msi: 0x00, thri: 0x02, rdi: 0x04, rlsi: 0x06, timeout: 0x0c };
const MCR = { dtr: 0x01, rts: 0x02, out1: 0x04, out2: 0x08, loop: 0x10 };
const LSR = { dr: 0x01, oe: 0x02, thre: 0x20, temt: 0x40 };
const TIMER = { charTimeout: 1, txRetry: 2 };
const FIFO_ON = 0x01;
const FIFO_TRIGGER_8 = 0x81;

/**
 * Stub host: records the INTx level and its transitions, timers and log lines; the byte stream
 * has `input` (bytes queued for the device), `output` (what the device sent) and `accept`, how
 * many bytes the host takes per write (Infinity unless a check says otherwise).
 */
function makeHost() {
  const host = { line: false, transitions: [], logs: [], timers: new Map() };
  host.stream = { input: [], output: [], accept: Number.POSITIVE_INFINITY, reads: 0 };
  const imports = {
    'vfiobox:device/irq': {
      raise(vector) {
        assert.equal(vector, 0);
        host.line = true;
        host.transitions.push('raise');
      },
      lower(vector) {
        assert.equal(vector, 0);
        host.line = false;
        host.transitions.push('lower');
      },
      isMasked: () => false,
    },
    'vfiobox:device/dma': {
      read: () => {
        throw { payload: 'not-granted' };
      },
      write: () => {
        throw { payload: 'not-granted' };
      },
    },
    'vfiobox:device/log': { log: (level, message) => void host.logs.push(`${level}: ${message}`) },
    'vfiobox:device/clock': {
      nowNs: () => 0n,
      setTimer: (id, delayNs) => void host.timers.set(id, delayNs),
      cancelTimer: (id) => void host.timers.delete(id),
    },
    'vfiobox:device/byte-stream': {
      write(data) {
        const taken = Math.min(data.length, host.stream.accept);
        host.stream.output.push(...data.subarray(0, taken));
        return taken;
      },
      read(maxLen) {
        host.stream.reads++;
        return Uint8Array.from(host.stream.input.splice(0, maxLen));
      },
    },
  };
  for (const key of Object.keys(imports)) imports[`${key}@0.1.0`] = imports[key];
  const getCoreModule = (name) => new WebAssembly.Module(readFileSync(join(dir, name)));
  const exports = instantiate(getCoreModule, imports);
  host.device = exports.device ?? exports['vfiobox:device/device@0.1.0'];
  host.read = (offset) => Number(host.device.regionRead(0, BigInt(offset), 1));
  host.write = (offset, value) => host.device.regionWrite(0, BigInt(offset), 1, BigInt(value));
  /** The host queues `bytes` for the device and tells it, as `vfiobox serve` does on input. */
  host.type = (bytes) => {
    host.stream.input.push(...bytes);
    host.device.streamReady();
  };
  return host;
}

/** Fires timer `id` as the host would, after checking the plugin armed it. */
function fire(host, id) {
  assert.ok(host.timers.has(id), `timer ${id} armed`);
  host.timers.delete(id);
  host.device.timer(id);
}

const ascii = (text) => [...text].map((c) => c.charCodeAt(0));
const iid = (host) => host.read(REG.iir) & 0x0f;

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('describe reports QEMU pci-serial: 1b36:0002, class 070002, 8-byte I/O BAR, INTA', (h) => {
  const d = h.device.describe();
  assert.deepEqual([d.vendorId, d.deviceId, d.classCode, d.revision], [0x1b36, 0x2, 0x070002, 1]);
  assert.deepEqual([d.subsystemVendorId, d.subsystemId], [0x1af4, 0x1100]);
  assert.deepEqual(d.bars, [{ index: 0, sizeBytes: 8n, kind: 'io', prefetchable: false }]);
  assert.deepEqual([d.irqs.intx, d.irqs.msiVectors, d.irqs.msix], ['a', 0, undefined]);
  assert.deepEqual(d.claimedRanges, []);
});

check('power-on registers: IIR 01, LSR 60, MSR b0 (peer connected), divisor 12', (h) => {
  assert.deepEqual(
    [REG.ier, REG.iir, REG.lcr, REG.mcr, REG.lsr, REG.msr, REG.scr].map(h.read),
    [0, 0x01, 0, 0, 0x60, 0xb0, 0],
  );
  h.write(REG.lcr, 0x80);
  assert.deepEqual([h.read(REG.dll), h.read(REG.dlm)], [12, 0]);
});

check('Linux autoconfig identifies a 16550A (IER, loopback, EFR, 16750 and UUE probes)', (h) => {
  // IER test: only bits 0-3 exist.
  h.write(REG.ier, 0);
  assert.equal(h.read(REG.ier) & 0x0f, 0);
  h.write(REG.ier, 0x0f);
  assert.equal(h.read(REG.ier) & 0x0f, 0x0f);
  h.write(REG.ier, 0xff);
  assert.equal(h.read(REG.ier), 0x0f, 'bits 4-7 (UUE etc.) read as zero: not an XScale');
  h.write(REG.ier, 0);
  // MSR loopback test: MCR = LOOP | OUT2 | RTS reads back as DCD | CTS.
  h.write(REG.mcr, MCR.loop | 0x0a);
  assert.equal(h.read(REG.msr) & 0xf0, 0x90);
  h.write(REG.mcr, 0);
  // EFR write (LCR = 0xbf, offset 2) lands in FCR; then FIFO enable shows IIR bits 7:6 = 11.
  h.write(REG.lcr, 0xbf);
  h.write(REG.fcr, 0);
  h.write(REG.lcr, 0);
  h.write(REG.fcr, FIFO_ON);
  assert.equal(h.read(REG.iir) >> 6, 3);
  // No EFR: offset 2 reads IIR (non-zero) with LCR = 0x80 and 0xbf.
  h.write(REG.lcr, 0x80);
  assert.notEqual(h.read(REG.iir), 0);
  h.write(REG.lcr, 0xbf);
  assert.notEqual(h.read(REG.iir), 0);
  // 16750 probe: FCR bit 5 does not give a 64-byte FIFO (IIR bit 5 stays 0).
  h.write(REG.lcr, 0x80);
  h.write(REG.fcr, FIFO_ON | 0x20);
  assert.equal(h.read(REG.iir) & 0x20, 0);
  h.write(REG.lcr, 0);
  // Scratch register holds any byte.
  for (const v of [0x55, 0xaa, 0x00]) {
    h.write(REG.scr, v);
    assert.equal(h.read(REG.scr), v);
  }
  assert.notEqual(h.read(REG.lsr), 0xff, 'startup refuses a port whose LSR reads 0xff');
});

check(
  'Linux startup THRE test: ETBEI raises THRE, an IIR read clears it, rewriting re-arms',
  (h) => {
    h.write(REG.mcr, MCR.out2);
    h.write(REG.ier, 0x02);
    assert.ok(h.line, 'INTx raised while THRE is pending and OUT2 is set');
    assert.equal(h.read(REG.iir), IIR.thri, 'iir1 reports THRE (FIFOs off)');
    assert.equal(h.read(REG.iir), IIR.none, 'reading the IIR that reported it cleared it');
    assert.ok(!h.line);
    h.write(REG.ier, 0);
    h.write(REG.ier, 0x02);
    assert.equal(h.read(REG.iir), IIR.thri, 'no UART_BUG_THRE: rewriting ETBEI re-arms');
    assert.deepEqual(h.transitions, ['raise', 'lower', 'raise', 'lower']);
  },
);

check('THR writes go to the byte stream at once; each emptying re-latches THRE', (h) => {
  h.write(REG.fcr, FIFO_ON);
  h.write(REG.mcr, MCR.out2 | MCR.dtr | MCR.rts);
  h.write(REG.ier, 0x02);
  assert.equal(h.read(REG.iir), 0xc0 | IIR.thri);
  for (const b of ascii('hi\n')) h.write(REG.thr, b);
  assert.deepEqual(h.stream.output, ascii('hi\n'));
  assert.equal(h.read(REG.lsr) & (LSR.thre | LSR.temt), LSR.thre | LSR.temt);
  assert.ok(h.line, 'THRE pending again after the FIFO drained');
  h.write(REG.ier, 0); // Linux stops TX when its buffer is empty.
  assert.ok(!h.line);
});

check('bytes the host refuses stay in the TX FIFO, THRE clear, and go out on retry', (h) => {
  h.write(REG.fcr, FIFO_ON);
  h.write(REG.mcr, MCR.out2);
  h.stream.accept = 0;
  for (const b of ascii('abc')) h.write(REG.thr, b);
  assert.deepEqual(h.stream.output, []);
  assert.equal(h.read(REG.lsr) & (LSR.thre | LSR.temt), 0);
  assert.ok(h.timers.has(TIMER.txRetry), 'a retry timer is armed, nothing blocks');
  h.stream.accept = 2;
  h.read(REG.scr); // Any access retries.
  assert.deepEqual(h.stream.output, ascii('ab'));
  h.stream.accept = 0;
  h.write(REG.ier, 0x02);
  assert.equal(iid(h), IIR.none, 'no THRE interrupt while THR is not empty');
  h.stream.accept = Number.POSITIVE_INFINITY;
  fire(h, TIMER.txRetry);
  assert.deepEqual(h.stream.output, ascii('abc'));
  assert.equal(iid(h), IIR.thri, 'the FIFO ran empty: THRE');
  assert.ok(!h.timers.has(TIMER.txRetry));
});

check('a THR write into a full TX FIFO is dropped and logged once', (h) => {
  h.write(REG.fcr, FIFO_ON);
  h.stream.accept = 0;
  for (let i = 0; i < 18; i++) h.write(REG.thr, 0x41 + i);
  h.stream.accept = Number.POSITIVE_INFINITY;
  h.read(REG.lsr);
  assert.equal(h.stream.output.length, 16);
  assert.deepEqual(h.stream.output.slice(0, 2), [0x41, 0x42]);
  assert.equal(h.logs.filter((l) => l.includes('TX FIFO was full')).length, 1);
});

check('loopback: THR loops to RBR, nothing reaches the stream, MCR outputs drive MSR', (h) => {
  h.write(REG.mcr, MCR.loop);
  h.write(REG.thr, 0x5a);
  assert.deepEqual(h.stream.output, []);
  assert.equal(h.read(REG.lsr) & LSR.dr, LSR.dr);
  assert.equal(h.read(REG.rbr), 0x5a);
  assert.equal(h.read(REG.lsr) & LSR.dr, 0);
  h.read(REG.msr); // Clear the deltas entering loopback made.
  h.write(REG.mcr, MCR.loop | MCR.dtr | MCR.rts | MCR.out1 | MCR.out2);
  assert.equal(h.read(REG.msr), 0xf0 | 0x0b, 'CTS DSR RI DCD, with DCTS DDSR DDCD');
  h.write(REG.mcr, MCR.loop);
  assert.equal(h.read(REG.msr), 0x0f, 'RI on->off sets TERI');
  assert.equal(h.read(REG.msr), 0x00, 'an MSR read clears the deltas');
});

check('stream input is not received in loopback, and arrives once loopback ends', (h) => {
  h.write(REG.mcr, MCR.loop);
  h.type(ascii('x'));
  assert.equal(h.read(REG.lsr) & LSR.dr, 0);
  h.write(REG.mcr, 0);
  assert.equal(h.read(REG.rbr), 0x78);
});

check('RX from the stream: RDA at the trigger level raises INTx; draining lowers it', (h) => {
  h.write(REG.fcr, FIFO_TRIGGER_8);
  h.write(REG.ier, 0x01);
  h.write(REG.mcr, MCR.out2);
  h.type(ascii('1234567'));
  assert.equal(h.read(REG.iir), 0xc0 | IIR.none, '7 bytes: below the trigger of 8');
  h.type(ascii('89'));
  assert.equal(h.read(REG.iir), 0xc0 | IIR.rdi);
  assert.ok(h.line);
  const got = [];
  while (h.read(REG.lsr) & LSR.dr) got.push(h.read(REG.rbr));
  assert.deepEqual(got, ascii('123456789'));
  assert.ok(!h.line);
});

check('RX pulls at most the FIFO room and more as the guest drains', (h) => {
  h.write(REG.fcr, FIFO_ON);
  const text = ascii('abcdefghijklmnopqrstuvwxyz');
  h.type(text);
  assert.equal(h.stream.input.length, text.length - 16, 'pulled 16: no overrun');
  const got = [];
  while (h.read(REG.lsr) & LSR.dr) got.push(h.read(REG.rbr));
  assert.deepEqual(got, text);
  assert.equal(h.read(REG.lsr) & LSR.oe, 0);
});

check('16450 mode (FIFOs off) holds one byte and pulls the next after each read', (h) => {
  h.type(ascii('ab'));
  assert.equal(h.stream.input.length, 1);
  assert.equal(h.read(REG.iir) & 0xc0, 0, 'IIR bits 7:6 = 00 with FIFOs off');
  assert.equal(h.read(REG.rbr), 0x61);
  assert.equal(h.read(REG.rbr), 0x62);
  assert.equal(h.read(REG.lsr) & LSR.dr, 0);
});

check('character timeout: data below the trigger interrupts after four character times', (h) => {
  h.write(REG.lcr, 0x03); // 8N1
  h.write(REG.lcr, 0x83);
  h.write(REG.dll, 1); // 115200 baud: 10 bits of 8.68 us.
  h.write(REG.lcr, 0x03);
  h.write(REG.fcr, FIFO_TRIGGER_8);
  h.write(REG.ier, 0x01);
  h.write(REG.mcr, MCR.out2);
  h.type(ascii('abc'));
  assert.equal(iid(h), IIR.none);
  assert.equal(h.timers.get(TIMER.charTimeout), 4n * 86805n);
  fire(h, TIMER.charTimeout);
  assert.equal(h.read(REG.iir), 0xc0 | IIR.timeout);
  assert.ok(h.line);
  assert.equal(h.read(REG.rbr), 0x61);
  assert.equal(iid(h), IIR.none, 'an RBR read clears the timeout');
  assert.ok(!h.line);
  assert.ok(h.timers.has(TIMER.charTimeout), 'restarted: two bytes are still waiting');
  h.read(REG.rbr);
  h.read(REG.rbr);
  assert.ok(!h.timers.has(TIMER.charTimeout), 'cancelled once the FIFO is empty');
});

check('FIFO: 17 bytes in loopback keep the first 16 and set OE; FCR clears each FIFO', (h) => {
  h.write(REG.fcr, FIFO_ON);
  h.write(REG.mcr, MCR.loop);
  for (let i = 0; i < 17; i++) h.write(REG.thr, i);
  const lsr = h.read(REG.lsr);
  assert.equal(lsr & (LSR.oe | LSR.dr), LSR.oe | LSR.dr);
  assert.equal(h.read(REG.lsr) & LSR.oe, 0, 'an LSR read clears OE');
  assert.equal(h.read(REG.rbr), 0);
  h.write(REG.fcr, FIFO_ON | 0x02); // Clear RX.
  assert.equal(h.read(REG.lsr) & LSR.dr, 0);
  h.write(REG.fcr, 0); // FIFOs off: IIR bits 7:6 = 00.
  assert.equal(h.read(REG.iir) & 0xc0, 0);
});

check('trigger levels 1, 4, 8 and 14 (FCR bits 7:6)', (h) => {
  h.write(REG.ier, 0x01);
  h.write(REG.mcr, MCR.loop);
  for (const [fcr, level] of [
    [0x01, 1],
    [0x41, 4],
    [0x81, 8],
    [0xc1, 14],
  ]) {
    h.write(REG.fcr, fcr | 0x02);
    for (let i = 0; i < level - 1; i++) h.write(REG.thr, i);
    assert.equal(iid(h), IIR.none, `${level - 1} bytes: below trigger ${level}`);
    h.write(REG.thr, 0xee);
    assert.equal(iid(h), IIR.rdi, `${level} bytes reach trigger ${level}`);
  }
});

check('16450-mode overrun overwrites RBR; with ELSI it is a line status interrupt first', (h) => {
  h.write(REG.mcr, MCR.loop | MCR.out2);
  h.write(REG.ier, 0x0f);
  h.write(REG.thr, 1);
  h.write(REG.thr, 2);
  assert.equal(iid(h), IIR.rlsi, 'RLS outranks RDA, THRE and MSI');
  assert.equal(h.read(REG.lsr) & LSR.oe, LSR.oe);
  assert.equal(iid(h), IIR.rdi, 'then RDA');
  assert.equal(h.read(REG.rbr), 2);
  assert.equal(iid(h), IIR.thri, 'then THRE');
  assert.equal(iid(h), IIR.msi, 'then MSI (entering loopback changed the inputs)');
  h.read(REG.msr);
  assert.equal(iid(h), IIR.none);
});

check('INTx is gated by MCR.OUT2', (h) => {
  h.write(REG.ier, 0x02);
  assert.ok(!h.line, 'THRE pending but OUT2 clear: line low');
  h.write(REG.mcr, MCR.out2);
  assert.ok(h.line);
  h.write(REG.mcr, 0);
  assert.ok(!h.line);
});

check('DLAB switches offsets 0 and 1 to the divisor latch; the divisor sets the timeout', (h) => {
  h.write(REG.ier, 0x05);
  h.write(REG.lcr, 0x80 | 0x03);
  h.write(REG.dll, 0x34);
  h.write(REG.dlm, 0x12);
  assert.deepEqual([h.read(REG.dll), h.read(REG.dlm)], [0x34, 0x12]);
  assert.deepEqual(h.stream.output, [], 'a DLL write is not a THR write');
  h.write(REG.lcr, 0x03);
  assert.equal(h.read(REG.ier), 0x05, 'IER untouched by DLM writes');
  h.write(REG.lcr, 0x83);
  h.write(REG.dll, 12); // 9600 baud
  h.write(REG.dlm, 0);
  h.write(REG.lcr, 0x03);
  h.write(REG.fcr, FIFO_TRIGGER_8);
  h.type([0x31]);
  assert.equal(h.timers.get(TIMER.charTimeout), 4n * ((20n * 12n * 1000000000n) / 230400n));
});

check('accesses other than 1 byte are invalid-width; outside BAR0 out-of-range', ({ device }) => {
  for (const width of [2, 4, 8]) {
    assert.throws(() => device.regionRead(0, 0n, width), { payload: 'invalid-width' });
    assert.throws(() => device.regionWrite(0, 0n, width, 0n), { payload: 'invalid-width' });
  }
  assert.throws(() => device.regionRead(0, 8n, 1), { payload: 'out-of-range' });
  assert.throws(() => device.regionRead(1, 0n, 1), { payload: 'out-of-range' });
});

check('save-state, reset and load-state round-trip registers, FIFOs and timers', (h) => {
  h.write(REG.fcr, FIFO_TRIGGER_8);
  h.write(REG.ier, 0x01);
  h.write(REG.mcr, MCR.out2 | MCR.dtr);
  h.write(REG.scr, 0xa5);
  h.type(ascii('hey'));
  const state = h.device.saveState();
  assert.deepEqual([...state.subarray(0, 4)], ascii('S550'));
  h.device.reset();
  h.timers.clear();
  h.line = false; // reset(): the host lowered INTx and cancelled the timers first.
  assert.deepEqual([h.read(REG.scr), h.read(REG.lsr)], [0, 0x60]);
  h.device.loadState(state);
  assert.equal(h.read(REG.scr), 0xa5);
  assert.equal(h.read(REG.mcr), MCR.out2 | MCR.dtr);
  fire(h, TIMER.charTimeout); // Re-armed by load-state.
  assert.equal(h.read(REG.iir), 0xc0 | IIR.timeout);
  assert.ok(h.line);
  const got = [h.read(REG.rbr), h.read(REG.rbr), h.read(REG.rbr)];
  assert.deepEqual(got, ascii('hey'));
});

check('load-state refuses a wrong size, magic, version or FIFO count, keeping state', (h) => {
  h.write(REG.scr, 0x77);
  const good = h.device.saveState();
  assert.throws(() => h.device.loadState(new Uint8Array(3)), /wrong size/);
  const badMagic = good.slice();
  badMagic[0] = 0x58;
  assert.throws(() => h.device.loadState(badMagic), /not a serial16550/);
  const badVersion = good.slice();
  badVersion[4] = 9;
  assert.throws(() => h.device.loadState(badVersion), /version/);
  const badCount = good.slice();
  badCount[19] = 2; // RX count with FIFOs off (capacity 1).
  assert.throws(() => h.device.loadState(badCount), /capacity/);
  assert.equal(h.read(REG.scr), 0x77);
});

check('reset returns to power-on and pulls stream bytes the host still holds', (h) => {
  h.write(REG.lcr, 0x1b);
  h.write(REG.mcr, MCR.loop);
  h.type(ascii('q')); // Held by the host: loopback disconnects the input.
  h.device.reset();
  assert.deepEqual([h.read(REG.lcr), h.read(REG.mcr)], [0, 0]);
  assert.equal(h.read(REG.rbr), 0x71);
});

let passed = 0;
let failed = 0;
for (const { name, fn } of checks) {
  try {
    fn(makeHost());
    passed++;
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}\n  ${err.stack ?? err}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
if (failed) process.exit(1);

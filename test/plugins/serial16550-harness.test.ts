// SPDX-License-Identifier: MIT
// The serial16550 plugin (plugins/c/serial16550) through the harness: every register behaviour
// of its README's map (PC16550D semantics), the byte stream in both directions, INTx gated by
// OUT2, and state across a reload, on virtual time.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PCI_STATUS, PCI_STATUS_INTERRUPT } from '../../host/device/config-space.js';
import { IRQ_INTX } from '../../host/device/types.js';
import { PluginError } from '../../host/errors.js';
import { createHarness, type Harness } from '../../host/harness/harness.js';
import { type HostImports, WitError } from '../../host/plugins/engine.js';
import { thrown } from '../helpers/thrown.js';
import { compiledPlugin, MiB } from './support.js';

const test = suite('serial16550 plugin through the harness');

/** BAR0 offsets (README "Register map"); DLAB = LCR bit 7. */
const R = {
  RBR: 0,
  THR: 0,
  DLL: 0,
  IER: 1,
  DLM: 1,
  IIR: 2,
  FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
} as const;
const MSR = 6;
const SCR = 7;
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
const IIR_NONE = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_TIMEOUT = 0x0c;
const IIR_FIFO = 0xc0;
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const LCR_DLAB = 0x80;
const LCR_8N1 = 0x03;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
/** Divisor 1 (115200 baud), 8N1: 10 bits = 86805 ns a character; the timeout is 4 of them. */
const CHAR_NS_115200 = Math.floor((10 * 1e9) / 115200);
const TIMEOUT_NS_115200 = 4 * Math.ceil((10 * 1e9) / 115200);

async function uart(): Promise<Harness> {
  return createHarness({ plugin: await compiledPlugin('serial16550'), name: 'serial16550' });
}

const rd = (h: Harness, offset: number) => h.read(0, offset, 1);
const wr = (h: Harness, offset: number, value: number) => h.write(0, offset, 1, value);
const iid = (h: Harness) => rd(h, R.IIR) & 0x0f;
const intx = (h: Harness) => (h.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) !== 0;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function setDivisor(h: Harness, divisor: number): void {
  wr(h, R.LCR, LCR_DLAB | LCR_8N1);
  wr(h, R.DLL, divisor & 0xff);
  wr(h, R.DLM, divisor >> 8);
  wr(h, R.LCR, LCR_8N1);
}

/** Reads RBR until LSR.DR clears; returns what came. */
function drain(h: Harness): string {
  const out: number[] = [];
  while (rd(h, R.LSR) & LSR_DR) out.push(rd(h, R.RBR));
  return String.fromCharCode(...out);
}

function nullHost(): HostImports {
  return {
    irq: { raise() {}, lower() {}, isMasked: () => false },
    dma: { read: () => new Uint8Array(0), write() {} },
    log: { log() {} },
    clock: { nowNs: () => 0n, setTimer() {}, cancelTimer() {} },
    byteStream: { write: (d) => d.length, read: () => new Uint8Array(0) },
  };
}

test('power-on values: IER 0, IIR 01, LCR 0, MCR 0, LSR 60, MSR b0, SCR 0, divisor 12', async () => {
  const h = await uart();
  assert.equal(
    [R.IER, R.IIR, R.LCR, R.MCR, R.LSR, MSR, SCR].map((o) => rd(h, o)),
    [0x00, 0x01, 0x00, 0x00, 0x60, 0xb0, 0x00],
  );
  wr(h, R.LCR, LCR_DLAB);
  assert.equal([rd(h, R.DLL), rd(h, R.DLM)], [12, 0]);
  assert.equal(h.irqs, []);
  h.close();
});

test('the scratch register holds any byte', async () => {
  const h = await uart();
  for (const v of [0x00, 0x55, 0xaa, 0xff]) {
    wr(h, SCR, v);
    assert.is(rd(h, SCR), v);
  }
  h.close();
});

test('IER keeps bits 0-3 and reads bits 4-7 as 0', async () => {
  const h = await uart();
  wr(h, R.IER, 0xff);
  assert.is(rd(h, R.IER), 0x0f);
  wr(h, R.IER, 0x00);
  assert.is(rd(h, R.IER), 0x00);
  wr(h, R.IER, 0xf5);
  assert.is(rd(h, R.IER), 0x05);
  h.close();
});

test('LCR bit 7 (DLAB) maps offsets 0 and 1 to the divisor latch, leaving THR and IER alone', async () => {
  const h = await uart();
  wr(h, R.IER, IER_MSI);
  wr(h, R.LCR, LCR_DLAB | 0x1b);
  assert.is(rd(h, R.LCR), LCR_DLAB | 0x1b, 'LCR reads back');
  wr(h, R.DLL, 0x34);
  wr(h, R.DLM, 0x12);
  assert.equal([rd(h, R.DLL), rd(h, R.DLM)], [0x34, 0x12]);
  assert.is(h.streamOut.length, 0, 'a DLL write transmits nothing');
  wr(h, R.LCR, 0x1b);
  assert.is(rd(h, R.IER), IER_MSI, 'IER untouched by the DLM write');
  wr(h, R.LCR, LCR_DLAB);
  assert.equal([rd(h, R.DLL), rd(h, R.DLM)], [0x34, 0x12], 'the divisor persists');
  h.close();
});

test('only 1-byte accesses are valid: wider ones are refused with EINVAL, not faults', async () => {
  const h = await uart();
  const err = thrown(() => h.read(0, 0, 2));
  assert.instance(err, PluginError);
  assert.is((err as PluginError).kind, 'returned');
  assert.is((err as PluginError).errno, 22);
  assert.is(h.trace.at(-1)?.op, 'read');
  assert.instance(
    thrown(() => h.write(0, 4, 4, 0)),
    PluginError,
  );
  assert.instance(
    thrown(() => h.read(0, 8, 1)),
    RangeError,
    'offset 8 is outside the 8-byte BAR',
  );
  const inst = (await compiledPlugin('serial16550')).instantiate(nullHost(), { memoryBytes: MiB });
  assert.is((thrown(() => inst.regionRead(0, 8n, 1)) as WitError).code, 'out-of-range');
  assert.is((thrown(() => inst.regionRead(1, 0n, 1)) as WitError).code, 'out-of-range');
  assert.is((thrown(() => inst.regionRead(0, 0n, 4)) as WitError).code, 'invalid-width');
  inst.dispose();
  assert.is(h.device.stats().fenced, false);
  assert.is(rd(h, R.LSR), 0x60);
  h.close();
});

test('MCR keeps bits 0-4; loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD with deltas', async () => {
  const h = await uart();
  wr(h, R.MCR, 0xff);
  assert.is(rd(h, R.MCR), 0x1f);
  wr(h, R.MCR, 0);
  rd(h, MSR);
  // Linux autoconfig: MCR = LOOP | OUT2 | RTS must read MSR bits 7-4 = 1001.
  wr(h, R.MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
  const msr = rd(h, MSR);
  assert.is(msr & 0xf0, 0x90);
  assert.is(msr & 0x0f, 0x02, 'DSR went away: DDSR (CTS and DCD stayed on)');
  assert.is(rd(h, MSR), 0x90, 'reading MSR clears the deltas');
  wr(h, R.MCR, MCR_LOOP | MCR_OUT1 | MCR_DTR);
  assert.is(rd(h, MSR), 0x60 | 0x01 | 0x02 | 0x08, 'DSR, RI on; CTS, DCD off: DCTS, DDSR, DDCD');
  wr(h, R.MCR, MCR_LOOP | MCR_DTR);
  assert.is(rd(h, MSR), 0x20 | 0x04, 'RI on to off sets TERI');
  wr(h, R.MCR, 0);
  assert.is(rd(h, MSR) & 0xf0, 0xb0, 'out of loopback: the line inputs again');
  h.close();
});

test('in loopback THR bytes reach the receiver, not the stream, and stream input waits', async () => {
  const h = await uart();
  wr(h, R.MCR, MCR_LOOP);
  h.streamIn('typed');
  wr(h, R.THR, 0x41);
  assert.is(rd(h, R.LSR) & (LSR_DR | LSR_THRE | LSR_TEMT), LSR_DR | LSR_THRE | LSR_TEMT);
  assert.is(rd(h, R.RBR), 0x41);
  assert.is(h.streamOut.length, 0);
  assert.is(rd(h, R.LSR) & LSR_DR, 0, 'the typed bytes are not received in loopback');
  assert.is(rd(h, R.RBR), 0x41, 'an empty receiver reads its last byte again');
  wr(h, R.MCR, 0);
  assert.is(rd(h, R.RBR), 0x74, 'out of loopback the input is received');
  assert.is(drain(h), 'yped', 'one byte at a time (16450 mode), pulled as the guest reads');
  h.close();
});

test('FIFO enable answers IIR bits 6-7 = 11; toggling it and FCR bit 1 clear the RX FIFO', async () => {
  const h = await uart();
  assert.is(rd(h, R.IIR) & IIR_FIFO, 0);
  wr(h, R.FCR, FCR_ENABLE);
  assert.is(rd(h, R.IIR), IIR_FIFO | IIR_NONE);
  wr(h, R.FCR, FCR_ENABLE | 0x20);
  assert.is(rd(h, R.IIR) & 0x20, 0, 'bit 5 (16750 64-byte FIFO) is ignored');
  wr(h, R.MCR, MCR_LOOP);
  for (const c of 'abc') wr(h, R.THR, c.charCodeAt(0));
  wr(h, R.FCR, FCR_ENABLE | FCR_CLEAR_RX);
  assert.is(rd(h, R.LSR) & LSR_DR, 0, 'FCR bit 1 cleared the RX FIFO');
  for (const c of 'def') wr(h, R.THR, c.charCodeAt(0));
  wr(h, R.FCR, 0);
  assert.is(rd(h, R.LSR) & LSR_DR, 0, 'turning FIFOs off cleared them');
  assert.is(rd(h, R.IIR) & IIR_FIFO, 0);
  wr(h, R.FCR, FCR_ENABLE);
  for (const c of 'ghi') wr(h, R.THR, c.charCodeAt(0));
  assert.is(drain(h), 'ghi', 'a 16-byte FIFO holds them all');
  h.close();
});

test('the RX FIFO holds 16 bytes; one more in loopback is an overrun (OE) until LSR is read', async () => {
  const h = await uart();
  wr(h, R.FCR, FCR_ENABLE);
  wr(h, R.MCR, MCR_LOOP);
  for (let i = 0; i < 17; i++) wr(h, R.THR, 0x61 + i);
  const lsr = rd(h, R.LSR);
  assert.is(lsr & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
  assert.is(rd(h, R.LSR) & LSR_OE, 0, 'reading LSR cleared OE');
  assert.is(drain(h), 'abcdefghijklmnop', 'the FIFO kept its bytes and lost the new one');
  h.close();
});

test('the RX trigger level (FCR bits 6-7) is 1, 4, 8 or 14 bytes for the received-data interrupt', async () => {
  for (const [bits, level] of [
    [0x00, 1],
    [0x40, 4],
    [0x80, 8],
    [0xc0, 14],
  ] as const) {
    const h = await uart();
    wr(h, R.FCR, FCR_ENABLE | bits);
    wr(h, R.IER, IER_RDI);
    wr(h, R.MCR, MCR_LOOP);
    for (let i = 0; i < level - 1; i++) wr(h, R.THR, 0x30);
    assert.is(iid(h), IIR_NONE, `below ${level}: no received-data interrupt`);
    wr(h, R.THR, 0x30);
    assert.is(iid(h), IIR_RDI, `at ${level}`);
    rd(h, R.RBR);
    assert.is(iid(h), IIR_NONE, `reading below ${level} clears it`);
    h.close();
  }
});

test('in 16450 mode (FIFOs off) any received byte is received data, and each FIFO holds one', async () => {
  const h = await uart();
  wr(h, R.IER, IER_RDI);
  wr(h, R.MCR, MCR_LOOP);
  wr(h, R.THR, 0x31);
  assert.is(iid(h), IIR_RDI);
  wr(h, R.THR, 0x32);
  assert.is(rd(h, R.LSR) & LSR_OE, LSR_OE, 'a second byte overruns');
  assert.is(rd(h, R.RBR), 0x32, '16450 overrun overwrites RBR');
  assert.is(iid(h), IIR_NONE);
  h.close();
});

test('THRE: ETBEI while empty raises it, the IIR read reporting it clears it, THR write re-arms', async () => {
  const h = await uart();
  wr(h, R.IER, IER_THRI);
  assert.is(rd(h, R.IIR), IIR_THRI);
  assert.is(rd(h, R.IIR), IIR_NONE, 'the IIR read that reported THRE cleared it');
  wr(h, R.IER, IER_THRI);
  assert.is(iid(h), IIR_THRI, 'writing ETBEI again re-arms it');
  wr(h, R.THR, 0x58);
  assert.is(iid(h), IIR_THRI, 'the byte went out at once and THR is empty again');
  wr(h, R.IER, 0);
  assert.is(iid(h), IIR_NONE, 'IER without ETBEI drops it');
  assert.equal([...h.streamOut], [0x58]);
  h.close();
});

test('IIR reports the highest priority: line status, data, THRE, modem status', async () => {
  const h = await uart();
  wr(h, R.MCR, MCR_LOOP);
  wr(h, R.THR, 0x31);
  wr(h, R.THR, 0x32); // 16450 mode: overrun
  wr(h, R.MCR, MCR_LOOP | MCR_RTS); // CTS: a modem status delta
  wr(h, R.IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
  assert.is(iid(h), IIR_RLSI);
  rd(h, R.LSR);
  assert.is(iid(h), IIR_RDI);
  rd(h, R.RBR);
  assert.is(rd(h, R.IIR), IIR_THRI);
  assert.is(iid(h), IIR_MSI, 'the THRE report cleared it');
  rd(h, MSR);
  assert.is(iid(h), IIR_NONE);
  h.close();
});

test('the character timeout fires after 4 quiet character times with data below the trigger', async () => {
  const h = await uart();
  setDivisor(h, 1);
  wr(h, R.FCR, FCR_ENABLE | 0xc0); // trigger 14
  wr(h, R.IER, IER_RDI);
  wr(h, R.MCR, MCR_OUT2);
  h.streamIn('ab');
  assert.is(iid(h), IIR_NONE);
  h.advance(TIMEOUT_NS_115200 - 2 * CHAR_NS_115200);
  rd(h, R.LSR);
  assert.is(iid(h), IIR_NONE, 'not yet');
  assert.equal(h.takeIrqs(), []);
  h.advance(2 * CHAR_NS_115200);
  assert.is(iid(h), IIR_TIMEOUT);
  assert.equal(
    h.takeIrqs().map((i) => i.index),
    [IRQ_INTX],
  );
  assert.ok(intx(h));
  assert.is(rd(h, R.RBR), 0x61);
  assert.is(iid(h), IIR_NONE, 'an RBR read clears it and restarts the timer');
  assert.not.ok(intx(h));
  h.advance(TIMEOUT_NS_115200);
  assert.is(iid(h), IIR_TIMEOUT, 'again for the byte left');
  assert.is(rd(h, R.RBR), 0x62);
  h.advance(10 * TIMEOUT_NS_115200);
  assert.is(iid(h), IIR_NONE, 'no timeout with the FIFO empty');
  h.close();
});

test('INTx follows "interrupt pending and OUT2": level changes only', async () => {
  const h = await uart();
  wr(h, R.IER, IER_THRI);
  assert.equal(h.takeIrqs(), [], 'pending, but OUT2 is clear');
  assert.not.ok(intx(h));
  wr(h, R.MCR, MCR_OUT2);
  assert.equal(
    h.takeIrqs().map((i) => [i.index, i.sub]),
    [[IRQ_INTX, 0]],
  );
  assert.ok(intx(h));
  wr(h, SCR, 1);
  assert.equal(h.takeIrqs(), [], 'still pending: no new signal');
  wr(h, R.MCR, 0);
  assert.not.ok(intx(h), 'clearing OUT2 lowers the line');
  wr(h, R.MCR, MCR_OUT2);
  assert.is(h.takeIrqs().length, 1);
  rd(h, R.IIR);
  assert.not.ok(intx(h), 'the IIR read cleared THRE: nothing pending');
  h.close();
});

test('received-data and THRE interrupts reach INTx with OUT2 set', async () => {
  const h = await uart();
  wr(h, R.MCR, MCR_OUT2);
  wr(h, R.IER, IER_RDI);
  h.streamIn('x');
  assert.is(h.takeIrqs().length, 1);
  assert.is(iid(h), IIR_RDI);
  rd(h, R.RBR);
  assert.not.ok(intx(h));
  wr(h, R.IER, IER_RDI | IER_THRI);
  assert.ok(intx(h));
  assert.is(h.takeIrqs().length, 1);
  h.close();
});

test('THR bytes go to the byte stream at once, with THRE and TEMT back before the next access', async () => {
  const h = await uart();
  for (const c of 'hello\n') {
    wr(h, R.THR, c.charCodeAt(0));
    assert.is(rd(h, R.LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
  }
  assert.is(text(h.streamOut), 'hello\n');
  assert.equal(
    h.trace.filter((e) => e.op === 'stream-out').map((e) => (e as { hex: string }).hex),
    ['68', '65', '6c', '6c', '6f', '0a'],
  );
  h.close();
});

test('stream input is pulled only as far as the RX FIFO has room: no overrun from typing', async () => {
  const h = await uart();
  wr(h, R.FCR, FCR_ENABLE);
  const typed = 'the quick brown fox jumps';
  h.streamIn(typed);
  assert.is(rd(h, R.LSR) & (LSR_DR | LSR_OE), LSR_DR);
  assert.is(drain(h), typed, 'every byte, in order, as the guest drained the FIFO');
  assert.is(rd(h, R.LSR) & LSR_OE, 0);
  assert.is(h.device.stats().streamInDropped, 0);
  h.close();
});

test('reset returns the registers to power-on and drops the line', async () => {
  const h = await uart();
  setDivisor(h, 3);
  wr(h, R.FCR, FCR_ENABLE);
  wr(h, R.IER, 0x0f);
  wr(h, R.MCR, MCR_OUT2 | MCR_LOOP);
  wr(h, SCR, 0x77);
  wr(h, R.THR, 0x20);
  assert.ok(intx(h));
  h.reset();
  assert.not.ok(intx(h));
  assert.equal(
    [R.IER, R.IIR, R.LCR, R.MCR, R.LSR, MSR, SCR].map((o) => rd(h, o)),
    [0x00, 0x01, 0x00, 0x00, 0x60, 0xb0, 0x00],
  );
  wr(h, R.LCR, LCR_DLAB);
  assert.equal([rd(h, R.DLL), rd(h, R.DLM)], [12, 0]);
  h.close();
});

test('save-state and load-state carry registers, FIFO contents and the line across a reload', async () => {
  const h = await uart();
  setDivisor(h, 0x0102);
  wr(h, R.FCR, FCR_ENABLE | 0x40);
  wr(h, SCR, 0x5c);
  wr(h, R.MCR, MCR_LOOP | MCR_OUT2);
  for (const c of 'wxyz') wr(h, R.THR, c.charCodeAt(0));
  wr(h, R.IER, IER_RDI);
  assert.ok(intx(h));
  h.takeIrqs();
  h.device.reload(await compiledPlugin('serial16550'));
  assert.is(h.device.stats().reloads, 1);
  assert.ok(intx(h), 'load-state drove INTx to the saved level');
  assert.equal([rd(h, SCR), rd(h, R.IER), rd(h, R.MCR)], [0x5c, IER_RDI, MCR_LOOP | MCR_OUT2]);
  assert.is(rd(h, R.IIR) & IIR_FIFO, IIR_FIFO);
  wr(h, R.LCR, LCR_DLAB);
  assert.equal([rd(h, R.DLL), rd(h, R.DLM)], [0x02, 0x01]);
  wr(h, R.LCR, LCR_8N1);
  assert.is(iid(h), IIR_RDI, 'the trigger level (4) survived');
  assert.is(drain(h), 'wxyz');
  h.close();
});

test('load-state refuses a wrong size or magic and keeps the running state', async () => {
  const inst = (await compiledPlugin('serial16550')).instantiate(nullHost(), { memoryBytes: MiB });
  inst.regionWrite(0, BigInt(SCR), 1, 0x11n);
  const state = inst.saveState();
  assert.is(state.length, 61, 'README: 61 bytes');
  assert.equal([...state.subarray(0, 4)], [...new TextEncoder().encode('S550')]);
  inst.regionWrite(0, BigInt(SCR), 1, 0x22n);
  const badMagic = state.slice();
  badMagic[1] = 0;
  const badVersion = state.slice();
  badVersion[4] = 99;
  for (const bad of [state.subarray(0, 60), badMagic, badVersion]) {
    const err = thrown(() => inst.loadState(bad));
    assert.instance(err, WitError);
    assert.match((err as WitError).code, /serial16550/);
  }
  assert.is(inst.regionRead(0, BigInt(SCR), 1), 0x22n);
  inst.loadState(state);
  assert.is(inst.regionRead(0, BigInt(SCR), 1), 0x11n);
  inst.dispose();
});

test.run();

// SPDX-License-Identifier: MIT
// Smoke check of build/edu.wasm through jco's JS glue, with stub host imports.
//
//   jco transpile build/edu.wasm -o build/jco --instantiation sync --no-namespaced-exports \
//     --valid-lifting-optimization --no-typescript
//   node smoke.mjs build/jco            # behaviour checks; prints "N passed, N failed"
//   node smoke.mjs build/jco --bench    # also ns per call of region-read and region-write
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? 'build/jco');
const { instantiate } = await import(pathToFileURL(join(dir, 'edu.js')).href);

const BAR0 = 0;
const REG = { ident: 0x00, live: 0x04, fact: 0x08, status: 0x20, irqStatus: 0x24 };
Object.assign(REG, { irqRaise: 0x60, irqAck: 0x64, dmaSrc: 0x80, dmaDst: 0x88 });
Object.assign(REG, { dmaCount: 0x90, dmaCmd: 0x98 });
const TIMER = { factorial: 1, dma: 2 };

/** Stub host: records interrupts, timers and log lines; 64 KiB of "guest RAM" at IOVA 0. */
function makeHost() {
  const host = { raised: [], lowered: [], logs: [], timers: new Map(), ram: new Uint8Array(65536) };
  const inRam = (iova, len) => iova + BigInt(len) <= BigInt(host.ram.length);
  const imports = {
    'vfiobox:device/irq': {
      raise: (vector) => void host.raised.push(vector),
      lower: (vector) => void host.lowered.push(vector),
      isMasked: () => false,
    },
    'vfiobox:device/dma': {
      read(iova, len) {
        if (!inRam(iova, len)) throw { payload: 'not-mapped' };
        return host.ram.slice(Number(iova), Number(iova) + len);
      },
      write(iova, data) {
        if (!inRam(iova, data.length)) throw { payload: 'not-mapped' };
        host.ram.set(data, Number(iova));
      },
    },
    'vfiobox:device/log': { log: (level, message) => void host.logs.push(`${level}: ${message}`) },
    'vfiobox:device/clock': {
      nowNs: () => 0n,
      setTimer: (id, delayNs) => void host.timers.set(id, delayNs),
      cancelTimer: (id) => void host.timers.delete(id),
    },
  };
  // Keys with the version too, for glue that asks for them.
  for (const key of Object.keys(imports)) imports[`${key}@0.1.0`] = imports[key];
  const getCoreModule = (name) => new WebAssembly.Module(readFileSync(join(dir, name)));
  const exports = instantiate(getCoreModule, imports);
  host.device = exports.device ?? exports['vfiobox:device/device@0.1.0'];
  return host;
}

function makeRegs(device) {
  const read = (offset, width = 4) => device.regionRead(BAR0, BigInt(offset), width);
  const write = (offset, value, width = 4) =>
    device.regionWrite(BAR0, BigInt(offset), width, BigInt(value));
  return { read, write };
}

/** Fires timer `id` as the host would, after checking the plugin armed it. */
function fire(host, id) {
  assert.ok(host.timers.has(id), `timer ${id} armed`);
  host.timers.delete(id);
  host.device.timer(id);
}

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('describe reports the QEMU edu identity and resources', ({ device }) => {
  const d = device.describe();
  assert.deepEqual(
    [d.vendorId, d.deviceId, d.classCode, d.revision],
    [0x1234, 0x11e8, 0xff00, 0x10],
  );
  assert.deepEqual([d.subsystemVendorId, d.subsystemId], [0x1af4, 0x1100]);
  assert.deepEqual(d.bars, [
    { index: 0, sizeBytes: 1n << 20n, kind: 'mem32', prefetchable: false },
  ]);
  assert.equal(d.irqs.intx, 'a');
  assert.equal(d.irqs.msiVectors, 1);
  assert.equal(d.irqs.msix, undefined);
  assert.deepEqual(d.claimedRanges, []);
});

check('ident reads 0x010000ed', ({ device }) => {
  assert.equal(makeRegs(device).read(REG.ident), 0x010000edn);
});

check('liveness returns the complement of the value written', ({ device }) => {
  const r = makeRegs(device);
  r.write(REG.live, 0x12345678);
  assert.equal(r.read(REG.live), 0xedcba987n);
});

check('factorial of 10 is 3628800 once the timer fires', (host) => {
  const r = makeRegs(host.device);
  r.write(REG.fact, 10);
  assert.equal(r.read(REG.status) & 1n, 1n, 'computing while the timer is armed');
  r.write(REG.fact, 3); // Ignored while computing, as in QEMU.
  fire(host, TIMER.factorial);
  assert.equal(r.read(REG.status) & 1n, 0n);
  assert.equal(r.read(REG.fact), 3628800n);
  assert.deepEqual(host.raised, [], 'no interrupt unless status bit 7 is set');
});

check('factorial with status bit 7 raises interrupt 0x1; ack lowers it', (host) => {
  const r = makeRegs(host.device);
  r.write(REG.status, 0x80);
  r.write(REG.fact, 5);
  fire(host, TIMER.factorial);
  assert.equal(r.read(REG.fact), 120n);
  assert.deepEqual(host.raised, [0]);
  assert.equal(r.read(REG.irqStatus), 1n);
  r.write(REG.irqAck, 1);
  assert.equal(r.read(REG.irqStatus), 0n);
  assert.deepEqual(host.lowered, [0]);
});

check('DMA copies RAM to the edu buffer and back, raising 0x100', (host) => {
  const r = makeRegs(host.device);
  const pattern = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 1) & 0xff);
  host.ram.set(pattern, 0x1000);
  r.write(REG.dmaSrc, 0x1000, 8);
  r.write(REG.dmaDst, 0x40100, 8);
  r.write(REG.dmaCount, 64, 8);
  r.write(REG.dmaCmd, 0x1 | 0x4);
  assert.equal(r.read(REG.dmaCmd) & 1n, 1n, 'running until the timer fires');
  fire(host, TIMER.dma);
  assert.equal(r.read(REG.dmaCmd) & 1n, 0n);
  assert.equal(r.read(REG.irqStatus), 0x100n);
  r.write(REG.dmaSrc, 0x40100, 8);
  r.write(REG.dmaDst, 0x3000, 8);
  r.write(REG.dmaCmd, 0x1 | 0x2);
  fire(host, TIMER.dma);
  assert.deepEqual(host.ram.subarray(0x3000, 0x3040), pattern);
});

check('DMA outside the edu buffer is refused and logged, and completes', (host) => {
  const r = makeRegs(host.device);
  r.write(REG.dmaSrc, 0x1000, 8);
  r.write(REG.dmaDst, 0x40800, 8);
  r.write(REG.dmaCount, 4096, 8);
  r.write(REG.dmaCmd, 0x1);
  fire(host, TIMER.dma);
  assert.equal(r.read(REG.dmaCmd) & 1n, 0n);
  assert.match(host.logs.join('\n'), /^warn: edu: DMA out of the edu buffer/m);
});

check('widths QEMU rejects read all-ones; bad BARs and widths are errors', ({ device }) => {
  const r = makeRegs(device);
  assert.equal(r.read(REG.ident, 2), 0xffffn);
  assert.equal(r.read(REG.ident, 8), 0xffffffffffffffffn);
  assert.equal(r.read(0x1000), 0xffffffffn, 'unimplemented offset');
  assert.throws(() => device.regionRead(1, 0n, 4), { payload: 'out-of-range' });
  assert.throws(() => device.regionRead(BAR0, 1n << 20n, 4), { payload: 'out-of-range' });
  assert.throws(() => device.regionRead(BAR0, 0n, 3), { payload: 'invalid-width' });
  assert.throws(() => device.regionRead(BAR0, 2n, 4), { payload: 'invalid-width' });
});

check('save-state, reset and load-state round-trip the registers', (host) => {
  const r = makeRegs(host.device);
  r.write(REG.live, 0xa5a5a5a5);
  r.write(REG.fact, 4); // Leaves a pending computation in the saved state.
  const state = host.device.saveState();
  host.device.reset();
  host.timers.clear();
  assert.equal(r.read(REG.live), 0n);
  host.device.loadState(state);
  assert.equal(r.read(REG.live), 0x5a5a5a5an);
  fire(host, TIMER.factorial); // Re-armed by load-state.
  assert.equal(r.read(REG.fact), 24n);
  assert.throws(() => host.device.loadState(new Uint8Array(3)), /wrong size/);
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

if (process.argv.includes('--bench')) {
  const { device } = makeHost();
  const calls = 1_000_000;
  const time = (fn) => {
    for (let i = 0; i < 100_000; i++) fn(); // Warm up: let V8 optimise the glue.
    const runs = [];
    for (let run = 0; run < 5; run++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) fn();
      runs.push(Number(process.hrtime.bigint() - start) / calls);
    }
    runs.sort((a, b) => a - b);
    const ns = runs.map((t) => t.toFixed(1));
    return `median ${ns[2]} ns/call (min ${ns[0]}, max ${ns[4]})`;
  };
  console.log(`region-read ident (no import):        ${time(() => device.regionRead(0, 0n, 4))}`);
  // irq ack with nothing pending: the plugin calls irq.lower, one host import per call.
  console.log(
    `region-write irq ack (one irq.lower): ${time(() => device.regionWrite(0, 0x64n, 4, 0n))}`,
  );
}

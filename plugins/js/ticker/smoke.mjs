// SPDX-License-Identifier: MIT
// Smoke check of build/ticker.wasm through jco's JS glue: stub vfiobox imports plus the host's
// deny-by-default WASI imports (host/plugins/wasi, compiled to build/host by tsc).
//
//   jco transpile build/ticker.wasm -o build/jco --instantiation sync --no-namespaced-exports \
//     --valid-lifting-optimization --no-typescript
//   node smoke.mjs build/jco            # behaviour checks; prints "N passed, N failed"
//   node smoke.mjs build/jco --bench    # also ns per region-read, next to edu's through the same
//                                       # glue options (build/plugins/edu.wasm, if built)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const WASI = join(ROOT, 'build', 'host', 'plugins', 'wasi', 'index.js');
if (!existsSync(WASI)) {
  console.error(`smoke: ${WASI} missing: compile the host first (npx tsc -p test/tsconfig.json)`);
  process.exit(1);
}
const { wasiImports } = await import(pathToFileURL(WASI).href);

const dir = resolve(process.argv[2] ?? 'build/jco');
const REG = { id: 0x00, version: 0x04, scratch: 0x08, doorbell: 0x0c, irqStatus: 0x10 };
Object.assign(REG, { irqAck: 0x14, periodUs: 0x18, control: 0x1c, ticks: 0x20 });
Object.assign(REG, { random: 0x24, uptimeUs: 0x28 });
const TICK_TIMER = 1;

/** Loads a transpiled component once: its instantiate() and compiled core modules. */
async function loadGlue(glueDir, name) {
  const { instantiate } = await import(pathToFileURL(join(glueDir, `${name}.js`)).href);
  const modules = new Map();
  const getCoreModule = (file) => {
    if (!modules.has(file))
      modules.set(file, new WebAssembly.Module(readFileSync(join(glueDir, file))));
    return modules.get(file);
  };
  return { instantiate, getCoreModule };
}

/**
 * Stub host: records interrupts, timers and log lines (the vfiobox log import and the plugin's
 * stdout/stderr both land in `logs`); time is a variable; random bytes count up from 1.
 */
function makeHost({ instantiate, getCoreModule }) {
  const host = { raised: [], lowered: [], logs: [], timers: new Map(), nowNs: 0n, randomFills: 0 };
  const record = (level, message) => void host.logs.push(`${level}: ${message}`);
  const imports = {
    'vfiobox:device/irq': {
      raise: (vector) => void host.raised.push(vector),
      lower: (vector) => void host.lowered.push(vector),
      isMasked: () => false,
    },
    'vfiobox:device/dma': {
      read() {
        throw { payload: 'not-granted' };
      },
      write() {
        throw { payload: 'not-granted' };
      },
    },
    'vfiobox:device/log': { log: record },
    'vfiobox:device/clock': {
      nowNs: () => host.nowNs,
      setTimer: (id, delayNs) => void host.timers.set(id, delayNs),
      cancelTimer: (id) => void host.timers.delete(id),
    },
    'vfiobox:device/byte-stream': { write: () => 0, read: () => new Uint8Array(0) },
    ...wasiImports({
      log: record,
      name: 'ticker',
      randomFill(bytes) {
        host.randomFills++;
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i + 1) & 0xff;
      },
    }),
  };
  let memory;
  const exports = instantiate(getCoreModule, imports, (module, importObject) => {
    const instance = new WebAssembly.Instance(module, importObject);
    if (!memory && instance.exports.memory instanceof WebAssembly.Memory)
      memory = instance.exports.memory;
    return instance;
  });
  host.device = exports.device;
  host.memoryBytes = () => memory?.buffer.byteLength ?? 0;
  host.read = (offset, width = 4) => host.device.regionRead(0, BigInt(offset), width);
  host.write = (offset, value, width = 4) =>
    host.device.regionWrite(0, BigInt(offset), width, BigInt(value));
  return host;
}

/** Fires timer `id` as the host would, after checking the plugin armed it. */
function fire(host, id) {
  assert.ok(host.timers.has(id), `timer ${id} armed`);
  host.nowNs += host.timers.get(id);
  host.timers.delete(id);
  host.device.timer(id);
}

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('describe reports the ticker identity and resources', ({ device }) => {
  const d = device.describe();
  assert.deepEqual([d.vendorId, d.deviceId, d.classCode, d.revision], [0x1234, 0x7469, 0xff00, 1]);
  assert.deepEqual([d.subsystemVendorId, d.subsystemId], [0x1af4, 0x1100]);
  assert.deepEqual(d.bars, [{ index: 0, sizeBytes: 4096n, kind: 'mem32', prefetchable: false }]);
  assert.deepEqual(d.irqs, { intx: 'a', msiVectors: 1, msix: undefined });
  assert.deepEqual(d.claimedRanges, []);
});

check('ID and VERSION are constant; SCRATCH keeps what was written', (h) => {
  assert.equal(h.read(REG.id), 0x6b636974n);
  assert.equal(h.read(REG.version), 0x00010000n);
  h.write(REG.scratch, 0xdeadbeef);
  assert.equal(h.read(REG.scratch), 0xdeadbeefn);
  h.write(REG.id, 0); // Read-only: dropped.
  assert.equal(h.read(REG.id), 0x6b636974n);
});

check('DOORBELL latches its value and raises vector 0; IRQ_ACK lowers it when clear', (h) => {
  h.write(REG.doorbell, 0x30);
  assert.deepEqual(h.raised, [0]);
  assert.equal(h.read(REG.irqStatus), 0x30n);
  h.write(REG.irqAck, 0x10);
  assert.deepEqual(h.lowered, [], 'one cause left');
  h.write(REG.irqAck, 0x20);
  assert.equal(h.read(REG.irqStatus), 0n);
  assert.deepEqual(h.lowered, [0]);
  h.write(REG.doorbell, 0); // Zero rings nothing.
  assert.deepEqual(h.raised, [0]);
});

check('CONTROL run arms the tick timer; each tick counts and can interrupt', (h) => {
  h.write(REG.periodUs, 250);
  assert.deepEqual([...h.timers], [], 'no timer until run is set');
  h.write(REG.control, 0x3);
  assert.equal(h.timers.get(TICK_TIMER), 250_000n);
  fire(h, TICK_TIMER);
  fire(h, TICK_TIMER);
  assert.equal(h.read(REG.ticks), 2n);
  assert.equal(h.read(REG.irqStatus), 1n);
  assert.deepEqual(h.raised, [0, 0]);
  h.write(REG.control, 0);
  assert.equal(h.timers.has(TICK_TIMER), false, 'stopping disarms the timer');
});

check('a PERIOD_US out of range is clamped and console.warn reaches the log', (h) => {
  h.write(REG.periodUs, 1);
  assert.equal(h.read(REG.periodUs), 10n);
  assert.deepEqual(h.logs, ['warn: ticker: PERIOD_US 1 clamped to 10']);
});

check('RANDOM reads come from the host WASI random source (Math.random -> get-random-u64)', (h) => {
  const before = h.randomFills;
  assert.equal(h.read(REG.random), 0x04030201n, 'Math.random of the bytes 01..08');
  assert.ok(h.randomFills > before, 'wasi:random/random was called');
});

check('UPTIME_US counts vfiobox clock time since reset', (h) => {
  h.nowNs = 7_000_000n;
  h.device.reset();
  h.nowNs += 1_500_000n;
  assert.equal(h.read(REG.uptimeUs), 1500n);
});

check('odd widths read all-ones; bad BARs, offsets and alignment are errors', (h) => {
  assert.equal(h.read(REG.id, 2), 0xffffn);
  assert.equal(h.read(REG.id, 8), 0xffffffffffffffffn);
  assert.equal(h.read(0x800), 0xffffffffn, 'unimplemented offset');
  assert.throws(() => h.device.regionRead(1, 0n, 4), { payload: 'out-of-range' });
  assert.throws(() => h.device.regionRead(0, 4096n, 4), { payload: 'out-of-range' });
  assert.throws(() => h.device.regionRead(0, 2n, 4), { payload: 'invalid-width' });
  assert.throws(() => h.device.regionWrite(0, 0n, 3, 0n), { payload: 'invalid-width' });
});

check('save-state, reset and load-state round-trip the registers and re-arm the timer', (h) => {
  h.write(REG.scratch, 0x1234);
  h.write(REG.periodUs, 100);
  h.write(REG.control, 0x1);
  h.write(REG.ticks, 41);
  const state = h.device.saveState();
  assert.equal(state.length, 36);
  h.device.reset();
  h.timers.clear();
  assert.equal(h.read(REG.scratch), 0n);
  h.device.loadState(state);
  assert.equal(h.read(REG.scratch), 0x1234n);
  fire(h, TICK_TIMER);
  assert.equal(h.read(REG.ticks), 42n);
  assert.throws(() => h.device.loadState(new Uint8Array(3)), /wrong size/);
  assert.equal(h.read(REG.scratch), 0x1234n, 'a refused state changes nothing');
});

const ticker = await loadGlue(dir, 'ticker');
let passed = 0;
let failed = 0;
for (const { name, fn } of checks) {
  try {
    fn(makeHost(ticker));
    passed++;
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}\n  ${err.stack ?? err}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
if (failed) process.exit(1);

/** ns per call: median of 5 runs after a warm-up (the same method as plugins/c/edu/smoke.mjs). */
function time(fn, calls) {
  for (let i = 0; i < calls / 10; i++) fn();
  const runs = [];
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn();
    runs.push(Number(process.hrtime.bigint() - start) / calls);
  }
  runs.sort((a, b) => a - b);
  return runs;
}

const fmt = (runs) =>
  `median ${runs[2].toFixed(1)} ns/call (min ${runs[0].toFixed(1)}, max ${runs[4].toFixed(1)})`;

/** edu through jco's API with the same options, if build/plugins/edu.wasm exists. */
async function loadEdu() {
  const wasm = [
    join(ROOT, 'build', 'plugins', 'edu.wasm'),
    join(ROOT, 'plugins', 'c', 'edu', 'build', 'edu.wasm'),
  ].find(existsSync);
  if (!wasm) return undefined;
  const { transpile } = await import('@bytecodealliance/jco');
  const { files } = await transpile(readFileSync(wasm), {
    name: 'edu',
    instantiation: 'sync',
    namespacedExports: false,
    validLiftingOptimization: true,
    typescript: false,
  });
  const out = mkdtempSync(join(tmpdir(), 'ticker-bench-edu-'));
  for (const [file, data] of Object.entries(files)) writeFileSync(join(out, file), data);
  return { glue: await loadGlue(out, 'edu'), cleanup: () => rmSync(out, { recursive: true }) };
}

async function bench() {
  const h = makeHost(ticker);
  const before = h.memoryBytes();
  const id = time(() => h.device.regionRead(0, 0n, 4), 20_000);
  console.log(`ticker region-read ID (no import):        ${fmt(id)}`);
  const rnd = time(() => h.device.regionRead(0, 0x24n, 4), 20_000);
  console.log(`ticker region-read RANDOM (wasi:random):  ${fmt(rnd)}`);
  const ack = time(() => h.device.regionWrite(0, 0x14n, 4, 0n), 20_000);
  console.log(`ticker region-write IRQ_ACK (no import):  ${fmt(ack)}`);
  console.log(`ticker linear memory: ${before} bytes at start, ${h.memoryBytes()} after the runs`);
  const edu = await loadEdu();
  if (!edu) {
    console.log('edu: build/plugins/edu.wasm not built (bash scripts/build-plugins.sh); skipped');
    return;
  }
  try {
    const e = makeHost(edu.glue);
    console.log(
      `edu region-read ident (no import):        ${fmt(time(() => e.device.regionRead(0, 0n, 4), 1_000_000))}`,
    );
  } finally {
    edu.cleanup();
  }
}

if (process.argv.includes('--bench')) await bench();

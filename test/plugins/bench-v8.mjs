// SPDX-License-Identifier: MIT
// Cost of the V8 engine's instance wrapper (host/plugins/engines/v8.ts) over jco's raw glue, on
// build/plugins/edu.wasm: ns per region-read of the ident register (no host import) and per
// region-write of irq ack (one irq.lower import), 10^6 calls after warm-up, median of 5.
//
//   npx tsc -p test/tsconfig.json && bash scripts/build-plugins.sh
//   node test/plugins/bench-v8.mjs
// Not a test (no timing is asserted anywhere): a measurement to rerun when the glue or the
// wrapper changes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { v8Engine } = await import(pathToFileURL(join(root, 'build/host/plugins/engines/v8.js')));
const { transpile } = await import('@bytecodealliance/jco');

const bytes = readFileSync(join(root, 'build/plugins/edu.wasm'));
const host = {
  irq: { raise() {}, lower() {}, isMasked: () => false },
  dma: { read: (_iova, len) => new Uint8Array(len), write() {} },
  log: { log() {} },
  clock: { nowNs: () => 0n, setTimer() {}, cancelTimer() {} },
  byteStream: { write: (d) => d.length, read: () => new Uint8Array(0) },
};

// Raw glue: the engine's jco options, instantiated directly with the host functions.
const { files } = await transpile(bytes, {
  name: 'plugin',
  instantiation: 'sync',
  namespacedExports: false,
  validLiftingOptimization: true,
  typescript: false,
});
const dir = mkdtempSync(join(tmpdir(), 'vfiobox-bench-'));
for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
const glue = await import(pathToFileURL(join(dir, 'plugin.js')).href);
const raw = glue.instantiate((n) => new WebAssembly.Module(readFileSync(join(dir, n))), {
  'vfiobox:device/irq': host.irq,
  'vfiobox:device/dma': host.dma,
  'vfiobox:device/log': host.log,
  'vfiobox:device/clock': host.clock,
}).device;

const compiled = await v8Engine.compile(bytes, { cacheDir: join(dir, 'cache'), name: 'edu' });
const wrapped = compiled.instantiate(host, { memoryBytes: 16 << 20 });

function time(fn) {
  for (let i = 0; i < 200_000; i++) fn();
  const runs = [];
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) fn();
    runs.push(Number(process.hrtime.bigint() - start) / 1_000_000);
  }
  runs.sort((a, b) => a - b);
  return `median ${runs[2].toFixed(1)} ns (min ${runs[0].toFixed(1)}, max ${runs[4].toFixed(1)})`;
}

console.log(`region-read ident, raw glue:       ${time(() => raw.regionRead(0, 0n, 4))}`);
console.log(`region-read ident, V8Instance:     ${time(() => wrapped.regionRead(0, 0n, 4))}`);
console.log(`region-write irq ack, raw glue:    ${time(() => raw.regionWrite(0, 0x64n, 4, 0n))}`);
console.log(
  `region-write irq ack, V8Instance:  ${time(() => wrapped.regionWrite(0, 0x64n, 4, 0n))}`,
);
rmSync(dir, { recursive: true, force: true });

#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The plugin-DMA bench (bench/README.md "DMA copy"): copies of 4 KiB and 1 MiB out of client
// memory, against memcpy of the same sizes in the same run.
// The device is the C edu plugin in a createPluginDevice model, served by VfioUserServer; the
// TS client (same process, same thread) maps guest memory as a memfd (dma.memfd + dmaMap with
// the fd), so the server copies straight out of its mmap of the client's pages. Rows:
// - edu DMA: one DMA command, in-thread: the 4-byte write of the command register, then the
//   edu's completion timer (a VirtualClock advanced by hand) calls dma.read(iova, 4096) through
//   the engine's dma lowering, the grant check and the supervisor into the server's one-copy
//   dmaCheck + dmaReadInto, and the plugin copies the result into its buffer. edu moves at most
//   4 KiB per command (its buffer's size).
// - plugin dma.read / dma.write: the hostile fixture (test/fixtures/plugins/hostile), whose
//   region-write of a length to 0x48 / 0x5c makes exactly one dma.read(0, len) / dma.write(0,
//   len) call, so 4 KiB and 1 MiB move through the whole plugin path (model, plugin export,
//   the engine's dma lowering, grant check, the server's one-copy dmaReadInto/dmaWriteFrom).
//   The same with len 0, and a region-write that calls no import, give the per-call split.
//   The hostile device is served by a server of its own, so on wasmtime its dma calls take the
//   server's native DMA port (native/src/js/vfio_user_direct.cc) like a served device's.
// - plugin dma.read / dma.write x K in one export: the hostile fixture's repeat register makes
//   one region-write issue K dma calls of 4 KiB (what a device walking a scatter-gather list
//   does), timed per copy: the same 4 KiB each time (cache-hot, like the memcpy row), and K
//   consecutive 4 KiB pages streaming through 64 MiB of client memory, against memcpy
//   streaming out of (read) or into (write) a 64 MiB memfd the same way.
// - plugin memcpy out of / into a DMA window (WIT 0.1.2 dma.map-window, wasmtime only): the
//   hostile fixture maps all of its client memory over its own once, and each copy is then
//   its own memcpy (wasm memory.copy) with no host call; the same four shapes (4 KiB, 1 MiB,
//   a burst of the same 4 KiB, 4 KiB pages streaming), against the same memcpy rows.
// - DmaSpace.read/write: the server's dmaRead (a new Buffer per call, what jco's glue lowered
//   dma.read through) and dmaWrite, called directly (info).
// - baselines: bench/c/memcpy_bench.c (gcc -O2, memcpy out of a MAP_SHARED memfd mapping, in a
//   child process) and Buffer.copy in this process.
// Medians over repetitions (C and JS alternate which goes first), with a GC before each row's
// sample so that one row's garbage is not charged to the next. Timing never fails anything.
//
// Usage: node bench/dma-copy.mjs [--quick] [--reps N] [--engine v8|wasmtime]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildC } from './cbuild.mjs';
import { timeLoop, warmUp } from './timing.mjs';

const GOAL = 0.8; // plugin DMA rate as a fraction of memcpy's
setFlagsFromString('--expose-gc'); // a collection between rows (V8 reads the flag at first use)
const gc = runInNewContext('gc');
const SIZES = [4096, 1 << 20];
const IOVA = 0x1000000n; // inside edu's default 28-bit DMA mask (plugins/c/edu/README.md)
const MEM_BYTES = 4 << 20;
const BACK_OFFSET = 2 << 20; // where the edu -> RAM copy lands, inside the map
const EDU = { src: 0x80, dst: 0x88, count: 0x90, cmd: 0x98, buffer: 0x40000n };
const CMD_RUN = 1;
const CMD_TO_RAM = 2;
const EDU_DMA_DELAY_NS = 10_000n; // kDmaDelayNs in plugins/c/edu/src/edu.c
/** test/fixtures/plugins/hostile/src/hostile.c: STATUS, arm, dma.read(0, v), dma.write(0, v) */
const HOSTILE = {
  status: 0x30,
  arm: 0x50,
  dmaReadLen: 0x48,
  dmaWriteLen: 0x5c,
  repeat: 0x60,
  stride: 0x64,
  windowIova: 0x70,
  mapWindow: 0x74, // value: length | 1 (writable)
  windowCopyOut: 0x84,
  windowCopyIn: 0x88,
};
/** the hostile client's memory at IOVA 0: its dma calls start there */
const LOW_BYTES = 64 << 20;
/** dma calls per export in the burst rows, and the streaming rows' walk (64 MiB > L3) */
const BURST = 64;
/** the streaming groups: 4 KiB copies walking LOW_BYTES, out of client memory and into it */
const STREAM = { read: 'stream-read', write: 'stream-write' };
const isStream = (g) => g === STREAM.read || g === STREAM.write;
const STREAM_CALLS = LOW_BYTES / 4096;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`[bench:dma-copy] ${msg}\n`);
const build = (rel) => pathToFileURL(join(root, 'build', rel)).href;
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    engine: { type: 'string', default: 'v8' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node bench/dma-copy.mjs [--quick] [--reps N] [--engine v8|wasmtime]\n',
  );
  process.exit(0);
}
const reps = Number(values.reps ?? (values.quick ? 3 : 9));
if (!Number.isSafeInteger(reps) || reps < 1) throw new Error(`--reps: got ${values.reps}`);
const sampleMs = values.quick ? 15 : 40;
const warmMs = values.quick ? 60 : 200;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const errText = (err) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

// ---------- build ----------
const cacheDir = join(process.env.VFIOBOX_CACHE ?? join(homedir(), '.cache', 'vfiobox'), 'bench');
mkdirSync(cacheDir, { recursive: true });
const cbin = join(cacheDir, 'memcpy_bench');
buildC(join(root, 'bench/c/memcpy_bench.c'), cbin);
const sources = [
  'host/device/model.ts',
  'host/vfio-user/server.ts',
  'host/vfio-user/client.ts',
  'host/plugins/loader.ts',
];
if (
  sources.some((src) => {
    const out = join(root, 'build', src.replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(root, src)).mtimeMs;
  })
) {
  log('npx tsc -p test/tsconfig.json (errors in other files do not stop the bench)');
  try {
    execFileSync('npx', ['tsc', '-p', 'test/tsconfig.json'], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch {
    log('tsc reported errors; going on with whatever it emitted');
  }
}

// ---------- the device, served to a client in this process ----------
const notes = [];
/** name -> { bytes, fn } for every in-process case */
const cases = [];
let teardown = async () => {};
try {
  const { loadPlugin } = await import(build('host/plugins/loader.js'));
  const { createPluginDevice } = await import(build('host/device/model.js'));
  const { grantFromManifest } = await import(build('host/plugins/grants.js'));
  const { VirtualClock } = await import(build('host/harness/virtual-clock.js'));
  const { VfioUserServer } = await import(build('host/vfio-user/server.js'));
  const { VfioUserClient, dma } = await import(build('host/vfio-user/client.js'));
  const { DMA_FLAG_READ, DMA_FLAG_WRITE } = await import(build('host/vfio-user/protocol.js'));

  const tmp = mkdtempSync(join(tmpdir(), 'vfiobox-bench-dma-'));
  const loaded = await loadPlugin(join(root, 'build/plugins/edu.wasm'), {
    engine: values.engine,
    cacheDir: join(tmp, 'jco'),
  });
  const clock = new VirtualClock();
  const model = createPluginDevice({
    name: 'edu',
    plugin: loaded.compiled,
    grant: grantFromManifest(loaded.manifest),
    clock,
  });
  // The DmaSpace the server hands the model on connect is what backs the plugin's dma import.
  let space;
  const attach = model.attach.bind(model);
  model.attach = (io) => {
    space = io.dma;
    attach(io);
  };
  // The hostile fixture moves any length with one dma call; it shares edu's DmaSpace.
  const hostileLoaded = await loadPlugin(join(root, 'build/plugins/hostile.wasm'), {
    engine: values.engine,
    cacheDir: join(tmp, 'jco'),
  });
  const hostile = createPluginDevice({
    name: 'hostile',
    plugin: hostileLoaded.compiled,
    grant: { ...grantFromManifest(hostileLoaded.manifest), dma: 'all' },
    clock,
    // room for a DMA window over all of LOW_BYTES, beside its heap
    limits: { memoryBytes: LOW_BYTES + (16 << 20) },
  });
  const server = new VfioUserServer(model, { socketPath: join(tmp, 'edu.sock') });
  server.listen();
  const client = await VfioUserClient.connect(join(tmp, 'edu.sock'));
  await client.negotiate();
  const mem = dma.memfd(MEM_BYTES);
  const pattern = new Uint8Array(1 << 20);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + (i >> 12)) & 0xff;
  mem.write(0, pattern);
  const flags = DMA_FLAG_READ | DMA_FLAG_WRITE;
  await client.dmaMap({ iova: IOVA, sizeBytes: MEM_BYTES, flags, fd: mem.fd });
  if (!space) throw new Error('the server did not attach the device');
  // hostile, served on its own socket: its client maps LOW_BYTES at IOVA 0 (hostile.c DMAs
  // from there)
  const hostileServer = new VfioUserServer(hostile, { socketPath: join(tmp, 'hostile.sock') });
  hostileServer.listen();
  const hostileClient = await VfioUserClient.connect(join(tmp, 'hostile.sock'));
  await hostileClient.negotiate();
  const low = dma.memfd(LOW_BYTES);
  low.write(0, pattern);
  low.seal(); // as QEMU's memory-backend-memfd: plain copies, and a DMA window may map it
  await hostileClient.dmaMap({ iova: 0n, sizeBytes: LOW_BYTES, flags, fd: low.fd });
  teardown = async () => {
    // a fenced fixture answers every write at once: its rows would time nothing
    const last = new Uint8Array(4);
    hostile.read(0, HOSTILE.status, last);
    if (hostile.stats().fenced || last.some((b) => b !== 0)) {
      notes.push(`INVALID hostile rows: the fixture ended fenced or failing (status ${last})`);
    }
    await hostileClient.dmaUnmap({ iova: 0n, sizeBytes: LOW_BYTES });
    await client.dmaUnmap({ iova: IOVA, sizeBytes: MEM_BYTES });
    const port = hostileServer.stats();
    notes.push(
      `hostile's DMA port (wasmtime only): ${port.directDmaReads} reads and ` +
        `${port.directDmaWrites} writes copied natively, ${port.directDmaDeclined} declined`,
    );
    low.close();
    hostileClient.close();
    hostileServer.close();
    hostile.close();
    client.close();
    server.close();
    model.close();
    mem.close();
    rmSync(tmp, { recursive: true, force: true });
  };

  const u64 = (v) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    return b;
  };
  const u32 = (v) => Uint8Array.of(v & 0xff, (v >> 8) & 0xff, 0, 0);
  const eduDma = (src, dst, count, cmd) => {
    model.write(0, EDU.src, u64(src));
    model.write(0, EDU.dst, u64(dst));
    model.write(0, EDU.count, u64(count));
    model.write(0, EDU.cmd, u32(cmd));
    clock.advance(EDU_DMA_DELAY_NS);
  };
  // Check the path moves the bytes: guest -> edu, then edu -> guest elsewhere, compare.
  eduDma(IOVA, EDU.buffer, 4096, CMD_RUN);
  eduDma(EDU.buffer, IOVA + BigInt(BACK_OFFSET), 4096, CMD_RUN | CMD_TO_RAM);
  const back = mem.read(BACK_OFFSET, 4096);
  if (!back.every((b, i) => b === pattern[i])) throw new Error('edu DMA round trip corrupted data');
  const st = model.stats();
  if (st.fenced || Object.keys(st.denied).length) {
    throw new Error(`edu DMA check: ${JSON.stringify(st)}`);
  }

  // Timed edu commands: registers stay set between commands, so one command = one 4-byte
  // write + the completion timer.
  const runCmd = u32(CMD_RUN);
  const toRamCmd = u32(CMD_RUN | CMD_TO_RAM);
  cases.push({
    key: 'edu-read-4096',
    label: 'edu plugin DMA command, guest -> edu (dma.read)',
    bytes: 4096,
    setup: () => {
      model.write(0, EDU.src, u64(IOVA));
      model.write(0, EDU.dst, u64(EDU.buffer));
      model.write(0, EDU.count, u64(4096));
    },
    fn: () => {
      model.write(0, EDU.cmd, runCmd);
      clock.advance(EDU_DMA_DELAY_NS);
    },
  });
  cases.push({
    key: 'edu-read-0',
    label: 'edu DMA command of 0 bytes: the fixed cost, no dma import call (info)',
    bytes: 4096,
    fixed: true,
    setup: () => {
      model.write(0, EDU.src, u64(IOVA));
      model.write(0, EDU.dst, u64(EDU.buffer));
      model.write(0, EDU.count, u64(0));
    },
    fn: () => {
      model.write(0, EDU.cmd, runCmd);
      clock.advance(EDU_DMA_DELAY_NS);
    },
  });
  cases.push({
    key: 'edu-write-4096',
    label: 'edu plugin DMA command, edu -> guest (dma.write) (info)',
    bytes: 4096,
    info: true,
    setup: () => {
      model.write(0, EDU.src, u64(EDU.buffer));
      model.write(0, EDU.dst, u64(IOVA + BigInt(BACK_OFFSET)));
      model.write(0, EDU.count, u64(4096));
    },
    fn: () => {
      model.write(0, EDU.cmd, toRamCmd);
      clock.advance(EDU_DMA_DELAY_NS);
    },
  });
  // The hostile fixture: one region-write = one plugin export call = one dma call of `len`.
  const le32 = (v) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  const status = new Uint8Array(4);
  /** { setup, fn }: fn = one action at `offset` with `len`, repeated `repeat` times */
  const hostileAct = (offset, len, repeat = 1, stride = 0) => {
    const value = le32(len);
    const setup = () => {
      hostile.write(0, HOSTILE.repeat, le32(repeat));
      hostile.write(0, HOSTILE.stride, le32(stride));
    };
    setup();
    hostile.write(0, offset, value);
    hostile.read(0, HOSTILE.status, status);
    if (status.some((b) => b !== 0)) throw new Error(`hostile ${offset}/${len}: status ${status}`);
    return { setup, fn: () => hostile.write(0, offset, value) };
  };
  cases.push({
    key: 'native-call',
    label: 'one JS -> native call doing nothing (VfioUserServer.connected) (info)',
    bytes: 4096,
    fixed: true,
    fn: () => server.connected,
  });
  const noImport = hostileAct(HOSTILE.arm, 0); // arms nothing: the export call alone
  cases.push({
    key: 'plugin-call',
    label: 'plugin region-write calling no import: the export call alone (info)',
    bytes: 4096,
    fixed: true,
    ...noImport,
  });
  /**
   * the copy shapes of one path (`prefix`-`key`): one export call of each size, a burst of the
   * same 4 KiB, and 4 KiB pages streaming through LOW_BYTES, each against its memcpy row
   */
  const copyCases = (prefix, key, offset, path, single) => {
    for (const size of SIZES) {
      cases.push({
        key: `${prefix}-${key}-${size}`,
        label: `${path} (${single})`,
        bytes: size,
        ...hostileAct(offset, size),
      });
    }
    cases.push({
      key: `${prefix}-${key}-burst`,
      label: `${path} x ${BURST} in one export, the same 4 KiB: per copy`,
      bytes: 4096,
      per: BURST,
      ...hostileAct(offset, 4096, BURST, 0),
    });
    cases.push({
      key: `${prefix}-${key}-stream`,
      label: `${path} x ${STREAM_CALLS} in one export, consecutive 4 KiB pages: per copy`,
      bytes: 4096,
      group: STREAM[key],
      per: STREAM_CALLS,
      minN: 3,
      ...hostileAct(offset, 4096, STREAM_CALLS, 4096),
    });
  };
  for (const [key, offset, what] of [
    ['read', HOSTILE.dmaReadLen, 'dma.read'],
    ['write', HOSTILE.dmaWriteLen, 'dma.write'],
  ]) {
    cases.push({
      key: `plugin-${key}-0`,
      label: `plugin ${what} of 0 bytes: export + import call, no copy (info)`,
      bytes: 4096,
      fixed: true,
      ...hostileAct(offset, 0),
    });
    copyCases(
      'plugin',
      key,
      offset,
      `plugin ${what}`,
      `hostile fixture: one export call, one ${what}`,
    );
  }
  // DMA windows (WIT 0.1.2 dma.map-window, wasmtime only): all of LOW_BYTES mapped over the
  // plugin's memory once, then each copy is the plugin's own memcpy (a wasm memory.copy) out of
  // or into the window, with no host call.
  hostile.write(0, HOSTILE.windowIova, le32(0));
  hostile.write(0, HOSTILE.mapWindow, le32(LOW_BYTES | 1));
  hostile.read(0, HOSTILE.status, status);
  const windowStatus = new DataView(status.buffer).getUint32(0, true);
  if (windowStatus !== 0) {
    notes.push(
      `DMA window rows: n/a on ${values.engine} (map-window status 0x${windowStatus.toString(16)};` +
        ' 0x106 = unsupported: windows need --engine wasmtime)',
    );
  } else {
    for (const [key, offset, what] of [
      ['read', HOSTILE.windowCopyOut, 'out of'],
      ['write', HOSTILE.windowCopyIn, 'into'],
    ]) {
      const path = `plugin memcpy ${what} a DMA window`;
      copyCases('window', key, offset, path, 'one export call, no import');
    }
  }
  cases.push({
    key: 'dmaspace-read-8',
    label: 'DmaSpace.read of 8 bytes: the per-call cost, next to no copy (info)',
    bytes: 4096,
    fixed: true,
    fn: () => space.read(IOVA, 8),
  });
  for (const size of SIZES) {
    cases.push({
      key: `dmaspace-read-${size}`,
      label: "DmaSpace.read: the server's dmaRead, a new Buffer per call (jco's old path) (info)",
      bytes: size,
      info: true,
      fn: () => space.read(IOVA, size),
    });
    // The other direction copies from a buffer the caller already has: no allocation per call.
    const data = pattern.subarray(0, size);
    const at = IOVA + BigInt(BACK_OFFSET);
    cases.push({
      key: `dmaspace-write-${size}`,
      label: "DmaSpace.write: the server's dmaWrite, into client memory (info)",
      bytes: size,
      info: true,
      fn: () => space.write(at, data),
    });
  }
} catch (err) {
  notes.push(`plugin rows: n/a (${errText(err)})`);
  log(`plugin rows: n/a: ${err instanceof Error ? err.stack : String(err)}`);
}
for (const size of SIZES) {
  const src = Buffer.alloc(size, 0x5a);
  const dst = Buffer.alloc(size);
  cases.push({
    key: `buffer-copy-${size}`,
    label: 'Buffer.copy (same process)',
    bytes: size,
    baseline: 'js',
    fn: () => src.copy(dst, 0, 0, size),
  });
}

// ---------- timing ----------
for (const c of cases) {
  c.setup?.();
  // warm up for warmMs (JIT and wasm tier-up take a while for the slower paths), then size a
  // sample to about sampleMs
  const per = warmUp(c.fn, warmMs);
  c.n = Math.max(c.minN ?? 200, Math.min(5_000_000, Math.round((sampleMs * 1e6) / per)));
  c.samples = [];
}
/** the table's groups: the two sizes, and 4 KiB copies streaming through LOW_BYTES */
const GROUPS = [...SIZES, STREAM.read, STREAM.write];
/** memcpy iterations per group for about sampleMs (4 KiB: ~25 ns, 1 MiB: ~35 µs, streaming
 *  4 KiB: ~200 ns on this VM), and the memcpy_bench argument of each */
const C_EST_NS = { 4096: 25, [1 << 20]: 35_000, [STREAM.read]: 200, [STREAM.write]: 200 };
const cArgs = GROUPS.map((g) => {
  const n = Math.max(100, Math.round((sampleMs * 1e6) / C_EST_NS[g]));
  if (g === STREAM.read) return `4096:${n}:${LOW_BYTES}`;
  if (g === STREAM.write) return `4096:${n}:${LOW_BYTES}:w`;
  return `${g}:${n}`;
});
const cSamples = Object.fromEntries(GROUPS.map((g) => [g, []]));
const runC = () => {
  const out = execFileSync(cbin, cArgs, { encoding: 'utf8' });
  for (const line of out.trim().split('\n')) {
    const r = JSON.parse(line);
    const group = r.span === r.size ? r.size : r.to_memfd ? STREAM.write : STREAM.read;
    cSamples[group].push(r.ns_per_copy);
  }
};
const runJs = (r) => {
  for (let k = 0; k < cases.length; k++) {
    const c = cases[(k + r) % cases.length];
    c.setup?.();
    gc(); // the garbage of the allocating rows (DmaSpace.read) is not charged to the next row
    c.samples.push(timeLoop(c.fn, c.n) / (c.per ?? 1)); // per copy for the repeated rows
  }
};
log(`${reps} reps x (C memcpy in a child, ${cases.length} in-process cases)`);
for (let r = 0; r < reps; r++) {
  if (r % 2 === 0) {
    runC();
    runJs(r);
  } else {
    runJs(r);
    runC();
  }
}
await teardown();

// ---------- per-call / per-byte split ----------
/**
 * t(len) = fixed + len * perByte, fitted through the 0-byte and 1 MiB plugin rows: what a
 * 4 KiB copy can reach at best is memcpy(4 KiB) / (fixed + memcpy(4 KiB)).
 */
function splitLines(rows) {
  const ns = (key) => rows.find((r) => r.key === key)?.ns.median;
  const memcpy = (n) => rows.find((r) => r.size === n && r.key === undefined)?.ns.median;
  const [small, big] = SIZES;
  const out = ['', 'split: t(len) = per call + len x per byte (from the 0-byte and 1 MiB rows)'];
  const call = ns('plugin-call');
  const native = ns('native-call');
  if (call === undefined || native === undefined) return [];
  out.push(
    `one native call: ${native.toFixed(0)} ns; dma.read makes two (dmaCheck, dmaReadInto) and` +
      ` dma.write one (dmaWriteFrom); memcpy of ${small} bytes: ${memcpy(small).toFixed(0)} ns`,
  );
  for (const key of ['read', 'write']) {
    const fixed = ns(`plugin-${key}-0`);
    const whole = ns(`plugin-${key}-${big}`);
    const at4k = ns(`plugin-${key}-${small}`);
    if (fixed === undefined || whole === undefined || at4k === undefined) continue;
    const perByte = (whole - fixed) / big;
    const predicted = fixed + perByte * small;
    out.push(
      `plugin dma.${key}: per call ${fixed.toFixed(0)} ns (export alone ${call.toFixed(0)} ns,` +
        ` the import ${(fixed - call).toFixed(0)} ns), per byte ${(perByte * 1000).toFixed(1)} ps` +
        ` (memcpy ${((memcpy(big) / big) * 1000).toFixed(1)} ps); 4 KiB predicted` +
        ` ${predicted.toFixed(0)} ns, measured ${at4k.toFixed(0)} ns; best 4 KiB ratio with a` +
        ` free copy: ${ratio(memcpy(small) / (fixed + memcpy(small)))}`,
    );
  }
  return out;
}

// ---------- table ----------
const mbps = (bytes, ns) => (bytes * 1e3) / ns;
const rows = [];
for (const size of GROUPS) {
  const bytes = isStream(size) ? 4096 : size;
  const c = stat(cSamples[size]);
  const memcpyMbps = mbps(bytes, c.median);
  const js = cases.find((k) => k.key === `buffer-copy-${size}`);
  const jsMbps = js ? mbps(bytes, median(js.samples)) : undefined;
  const memcpyLabel = isStream(size)
    ? `C memcpy ${size === STREAM.read ? 'out of' : 'into'} consecutive 4 KiB of a` +
      ` ${LOW_BYTES >> 20} MiB memfd (memcpy_bench SPAN)`
    : 'C memcpy (bench/c/memcpy_bench.c, gcc -O2)';
  rows.push({ size, label: memcpyLabel, ns: c, mbps: memcpyMbps });
  for (const k of cases.filter((x) => (x.group ?? x.bytes) === size)) {
    const s = stat(k.samples);
    const rate = k.fixed ? undefined : mbps(bytes, s.median);
    if (rate === undefined) {
      rows.push({ size, key: k.key, label: k.label, ns: s, n: k.n });
      continue;
    }
    rows.push({
      size,
      key: k.key,
      label: k.label,
      ns: s,
      n: k.n,
      mbps: rate,
      vsMemcpy: rate / memcpyMbps,
      vsBufferCopy: k.baseline || jsMbps === undefined ? undefined : rate / jsMbps,
      goal: k.baseline || k.info ? undefined : GOAL,
    });
  }
}
const size = (b) =>
  isStream(b)
    ? `4 KiB of ${LOW_BYTES >> 20} MiB`
    : b >= 1 << 20
      ? `${b >> 20} MiB`
      : `${b >> 10} KiB`;
const fmtNs = (s) => {
  const v = s.median >= 10000 ? `${(s.median / 1000).toFixed(1)} µs` : `${s.median.toFixed(0)} ns`;
  return `${v} ±${Math.round(((s.max - s.min) / s.median / 2) * 100)}%`;
};
const row = (...cells) => `| ${cells.join(' | ')} |`;
const ratio = (v) => v.toFixed(v < 0.1 ? 3 : 2);
const lines = [
  '',
  `DMA copy out of client memory (memfd mapped by the TS client), ${reps} reps, medians`,
  'ratio = MB/s / memcpy MB/s (1.00 = as fast as memcpy); MB/s = 10^6 bytes/s',
  '',
  row('size', 'path', 'per copy', 'MB/s', 'ratio vs memcpy', 'ratio vs Buffer.copy', 'goal'),
  row('---', '---', '---', '---', '---', '---', '---'),
];
for (const r of rows) {
  const met =
    r.goal === undefined ? '-' : `>= ${r.goal} ${r.vsMemcpy >= r.goal ? 'met' : 'NOT met'}`;
  lines.push(
    row(
      size(r.size),
      r.label,
      fmtNs(r.ns),
      r.mbps === undefined ? '-' : r.mbps.toFixed(0),
      r.mbps === undefined ? '-' : r.vsMemcpy === undefined ? '1.00' : ratio(r.vsMemcpy),
      r.vsBufferCopy === undefined ? '-' : ratio(r.vsBufferCopy),
      met,
    ),
  );
}
lines.push(...splitLines(rows));
if (notes.length) lines.push('', ...notes.map((n) => `note: ${n}`));
process.stdout.write(`${lines.join('\n')}\n`);

const outDir = join(root, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, `dma-copy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      host: hostname(),
      node: process.version,
      mode: values.quick ? 'quick' : 'full',
      reps,
      goal: GOAL,
      memcpyArgs: cArgs,
      rows,
      samples: {
        memcpy: cSamples,
        ...Object.fromEntries(cases.map((c) => [c.key, c.samples])),
      },
      notes,
    },
    null,
    2,
  )}\n`,
);
log(`raw results: ${outFile}`);
process.exit(0);

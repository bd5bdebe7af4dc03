#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The plugin-runtime bench (bench/README.md "Plugins"), all in one thread of one process:
// 1. ns per trapped access (a plugin export plus one host import) for the C edu plugin and, when
//    it is built, the TypeScript plugin: through the V8 engine's instance (v8Engine) and the
//    whole device model (createPluginDevice read/write of 4 bytes), and for the TS plugin also
//    through jco's raw glue with the host's WASI imports (measurable before loadPlugin accepts
//    it), next to two floors measured in the same run: a plain N-API call into the addon
//    (DmaBuffer.fill(0, 0, 0): three integer arguments, a bounds check, no syscall, no
//    allocation) and a wasm core function that calls one JS import.
// 2. The chosen jco glue (node_modules, 1.12.0) against the newest jco (JCO_NEWEST, installed
//    with npm into the bench cache on first use, offline afterwards), same transpile options as
//    host/plugins/engines/jco-cache.ts.
// 3. Cold start: compile + instantiate with an empty cache (fresh process), with a warm cache
//    (fresh process), and instantiate only (compiled plugin in memory: what a restart costs).
// Medians over repetitions, each case once per repetition in rotating order. Timing never fails
// anything: exit 0 whenever something was measured.
//
// Usage: node bench/plugins.mjs [--quick] [--reps N]
// Progress goes to stderr, the tables to stdout, raw JSON to bench/out/plugins-<date>.json.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { timeLoop, warmUp } from './timing.mjs';

/** The newest @bytecodealliance/jco on npm when this was written (`npm view ... version`). */
const JCO_NEWEST = '1.35.0';
/** The engine's transpile options (host/plugins/engines/jco-cache.ts GLUE_OPTIONS). */
const GLUE_OPTIONS = {
  name: 'plugin',
  instantiation: 'sync',
  namespacedExports: false,
  validLiftingOptimization: true,
  typescript: false,
  // jco >= 1.13's spelling of --no-typescript (1.12 ignores it): the glue is the same either way
  emitTypescriptDeclarations: false,
};
const MEMORY_BYTES = 16 << 20;
// A plugin's own memory budget when its manifest names one: the TS plugin's JS heap needs about
// 75 MiB under sustained calls and traps under a 16 MiB cap (plugins/js/ticker/README.md).
const memOf = (loaded) => loaded.manifest.budgets.memoryBytes ?? MEMORY_BYTES;
/** Per plugin: a register whose read calls no import, and a write that calls irq.raise once. */
const ACCESS = {
  edu: { read: 0x00, raise: 0x60, raiseValue: 1 }, // ident; irq raise (plugins/c/edu/README.md)
  ticker: { read: 0x00, raise: 0x0c, raiseValue: 1 }, // ID; DOORBELL (plugins/js/ticker/src)
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const log = (msg) => process.stderr.write(`[bench:plugins] ${msg}\n`);
const build = (rel) => pathToFileURL(join(root, 'build', rel)).href;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    'cold-child': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/plugins.mjs [--quick] [--reps N]\n');
  process.exit(0);
}

// ---------- cold start, in a fresh process ----------

/** Loads the plugin like `vfiobox serve` does, instantiates it, prints the times as JSON. */
async function coldChild(pluginPath, cacheDir) {
  const t0 = performance.now();
  const { loadPlugin } = await import(build('host/plugins/loader.js'));
  const t1 = performance.now();
  const loaded = await loadPlugin(pluginPath, { cacheDir });
  const t2 = performance.now();
  const instance = loaded.compiled.instantiate(nullHost(), { memoryBytes: memOf(loaded) });
  instance.describe();
  const t3 = performance.now();
  instance.dispose();
  const times = { importMs: t1 - t0, loadMs: t2 - t1, instantiateMs: t3 - t2, totalMs: t3 - t0 };
  process.stdout.write(`${JSON.stringify(times)}\n`);
}

function nullHost(counter = { raised: 0 }) {
  return {
    irq: {
      raise() {
        counter.raised++;
      },
      lower() {},
      isMasked: () => false,
    },
    dma: { read: (_iova, len) => new Uint8Array(len), write() {} },
    log: { log() {} },
    clock: { nowNs: () => 0n, setTimer() {}, cancelTimer() {} },
    byteStream: { write: (d) => d.length, read: () => new Uint8Array(0) },
  };
}

// ---------- helpers ----------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (xs) => {
  const med = median(xs);
  return { median: med, min: Math.min(...xs), max: Math.max(...xs), samples: xs };
};
const spreadPct = (s) => Math.round(((s.max - s.min) / s.median / 2) * 100);
const errText = (err) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/** Rebuilds build/ with tsc when a source this bench imports is newer than its output. */
function ensureTsBuilt() {
  const sources = [
    'host/plugins/engines/v8.ts',
    'host/plugins/engines/jco-cache.ts',
    'host/plugins/loader.ts',
    'host/device/model.ts',
    'host/device/supervisor.ts',
    'host/harness/virtual-clock.ts',
  ];
  const stale = sources.some((src) => {
    const out = join(root, 'build', src.replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(root, src)).mtimeMs;
  });
  if (!stale) return;
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

/** The newest jco in the bench cache, installed by npm on first use. */
function newestJco(cacheDir) {
  const dir = join(cacheDir, `jco-${JCO_NEWEST}`);
  const pkgDir = join(dir, 'node_modules', '@bytecodealliance', 'jco');
  const installed = () => {
    try {
      return JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version === JCO_NEWEST;
    } catch {
      return false;
    }
  };
  if (!installed()) {
    log(`npm install @bytecodealliance/jco@${JCO_NEWEST} into ${dir}`);
    mkdirSync(dir, { recursive: true });
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        dir,
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        `@bytecodealliance/jco@${JCO_NEWEST}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (!installed()) throw new Error(`npm did not install jco ${JCO_NEWEST} into ${dir}`);
  }
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const entry = pkg.exports?.['.']?.default ?? pkg.main;
  return { version: pkg.version, entry: join(pkgDir, entry) };
}

/** jco's glue for `bytes`, written to `dir`, instantiated with `host` (no engine around it). */
async function rawGlue(transpile, bytes, dir, host, extraImports = {}) {
  const { files } = await transpile(bytes, { ...GLUE_OPTIONS });
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  const glue = await import(pathToFileURL(join(dir, 'plugin.js')).href);
  return glue.instantiate((n) => new WebAssembly.Module(readFileSync(join(dir, n))), {
    ...extraImports,
    'vfiobox:device/irq': host.irq,
    'vfiobox:device/dma': host.dma,
    'vfiobox:device/log': host.log,
    'vfiobox:device/clock': host.clock,
    'vfiobox:device/byte-stream': host.byteStream,
  }).device;
}

/**
 * (module (import "h" "f" (func (param i32))) (func (export "g") (param i32) local.get 0 call 0)):
 * the floor of a wasm -> JS call.
 */
// biome-ignore format: one wasm section per line
const FLOOR_WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, // type: (i32) -> ()
  0x02, 0x07, 0x01, 0x01, 0x68, 0x01, 0x66, 0x00, 0x00, // import "h" "f" func type 0
  0x03, 0x02, 0x01, 0x00, // function 1 has type 0
  0x07, 0x05, 0x01, 0x01, 0x67, 0x00, 0x01, // export "g" = func 1
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x10, 0x00, 0x0b, // local.get 0; call 0; end
]);

/** The TS plugin, if one is built: [name, path] or undefined. */
function findTsPlugin() {
  const jsDir = join(root, 'plugins', 'js');
  if (!existsSync(jsDir)) return undefined;
  for (const name of readdirSync(jsDir).sort()) {
    for (const path of [
      join(root, 'build', 'plugins', `${name}.wasm`),
      join(jsDir, name, 'build', `${name}.wasm`),
    ]) {
      if (existsSync(path)) return [name, path];
    }
  }
  return undefined;
}

// ---------- the bench ----------

async function main() {
  const reps = Number(values.reps ?? (values.quick ? 3 : 11));
  if (!Number.isSafeInteger(reps) || reps < 1) throw new Error(`--reps: got ${values.reps}`);
  const sampleMs = values.quick ? 15 : 40;
  const warmMs = values.quick ? 60 : 200;
  const coldReps = values.quick ? 2 : 5;
  const instReps = values.quick ? 5 : 20;

  const cacheRoot = join(
    process.env.VFIOBOX_CACHE ?? join(homedir(), '.cache', 'vfiobox'),
    'bench',
  );
  mkdirSync(cacheRoot, { recursive: true });
  ensureTsBuilt();
  const eduPath = join(root, 'build', 'plugins', 'edu.wasm');
  if (!existsSync(eduPath)) {
    log(`${eduPath} is missing (bash scripts/build-plugins.sh): nothing to measure`);
    process.exit(1);
  }

  const { loadPlugin } = await import(build('host/plugins/loader.js'));
  const { createPluginDevice } = await import(build('host/device/model.js'));
  const { grantFromManifest } = await import(build('host/plugins/grants.js'));
  const { VirtualClock } = await import(build('host/harness/virtual-clock.js'));
  const tmp = mkdtempSync(join(tmpdir(), 'vfiobox-bench-plugins-'));
  const notes = [];

  // { key, label, op, fn, count?, perCall? }: count.raised must grow by perCall per call
  const cases = [];

  // floors
  // The ratio base: a method with three integer arguments, the shape of a region access; the
  // getter next to it is one bare N-API crossing.
  let nativeNote = 'N-API `DmaBuffer.fill(0, 0, 0)` (ratio base)';
  try {
    const { loadNative } = await import(build('host/native/binding.js'));
    const addon = loadNative('linux');
    const buf = new addon.DmaBuffer(4096);
    const efd = new addon.EventFd();
    cases.push({
      key: 'napi',
      label: nativeNote,
      op: '-',
      fn: () => buf.fill(0, 0, 0),
    });
    cases.push({
      key: 'napi-getter',
      label: 'N-API getter `EventFd.fd`',
      op: '-',
      fn: () => efd.fd,
    });
  } catch (err) {
    nativeNote = `N-API call: n/a (${errText(err)})`;
    notes.push(nativeNote);
  }
  const floorCount = { raised: 0 };
  const floorImport = (_v) => {
    floorCount.raised++;
  };
  const floor = new WebAssembly.Instance(new WebAssembly.Module(FLOOR_WASM), {
    h: { f: floorImport },
  }).exports.g;
  cases.push({
    key: 'wasm-js',
    label: 'wasm core function -> 1 JS import',
    op: '-',
    fn: () => floor(1),
  });

  // plugins through each path
  const plugins = [['edu', eduPath]];
  const ts = findTsPlugin();
  const tsRow = { name: ts?.[0] ?? '-', status: 'n/a (not built)' };
  if (ts) plugins.push(ts);
  else
    notes.push(
      'TS plugin: n/a (not built: no build/plugins/<name>.wasm or plugins/js/*/build/*.wasm)',
    );

  const loadedPlugins = {};
  for (const [name, path] of plugins) {
    const access = ACCESS[name];
    if (name !== 'edu' && access) {
      // The TS plugin through jco's glue with the host's WASI imports, no engine around it:
      // measurable even while the engine does not load it yet.
      try {
        const { wasiImports } = await import(build('host/plugins/wasi/index.js'));
        const { transpile } = await import('@bytecodealliance/jco');
        const count = { raised: 0 };
        const wasi = wasiImports({ log() {}, name });
        const dir = join(tmp, `glue-${name}`);
        const dev = await rawGlue(transpile, readFileSync(path), dir, nullHost(count), wasi);
        const label = `${name} (TS): raw jco glue + host WASI imports`;
        const raiseOff = BigInt(access.raise);
        const raiseVal = BigInt(access.raiseValue);
        cases.push({
          key: `${name}-glue-read`,
          label,
          op: 'region-read (no import)',
          fn: () => dev.regionRead(0, BigInt(access.read), 4),
        });
        cases.push({
          key: `${name}-glue-raise`,
          label,
          op: 'region-write -> irq.raise',
          fn: () => dev.regionWrite(0, raiseOff, 4, raiseVal),
          count,
          perCall: 1,
        });
      } catch (err) {
        notes.push(`${name}: raw glue n/a (${errText(err)})`);
      }
    }
    let loaded;
    try {
      if (!access) throw new Error(`no register map for '${name}' in ACCESS`);
      loaded = await loadPlugin(path, { cacheDir: join(tmp, 'jco-cache') });
    } catch (err) {
      const why = `${path.slice(root.length + 1)} is built but loadPlugin refuses it: ${errText(err)}`;
      // the table gets the gist ("...: imports 'wasi:io/error@0.2.3', which ..."), the note all
      if (name !== 'edu') tsRow.status = `n/a (${why.split(', which')[0]})`;
      notes.push(`${name}: ${why}`);
      log(`${name}: ${why}`);
      continue;
    }
    if (name !== 'edu') tsRow.status = 'measured';
    loadedPlugins[name] = { path, loaded };
    // (a) the engine's instance, host imports as plain functions (no grants, no supervisor)
    const count = { raised: 0 };
    const inst = loaded.compiled.instantiate(nullHost(count), { memoryBytes: memOf(loaded) });
    const off = BigInt(access.read);
    const raiseOff = BigInt(access.raise);
    const raiseVal = BigInt(access.raiseValue);
    cases.push({
      key: `${name}-engine-read`,
      label: `${name}: engine instance (v8Engine)`,
      op: 'region-read (no import)',
      fn: () => inst.regionRead(0, off, 4),
    });
    cases.push({
      key: `${name}-engine-raise`,
      label: `${name}: engine instance (v8Engine)`,
      op: 'region-write -> irq.raise',
      fn: () => inst.regionWrite(0, raiseOff, 4, raiseVal),
      count,
      perCall: 1,
    });
    // (b) the whole device model: grants, supervisor, MSI routing, IrqSink
    const sink = { raised: 0 };
    const model = createPluginDevice({
      name,
      plugin: loaded.compiled,
      grant: grantFromManifest(loaded.manifest),
      clock: new VirtualClock(),
      limits: { memoryBytes: memOf(loaded) },
    });
    model.attach({
      irq: {
        trigger: () => {
          sink.raised++;
          return true;
        },
      },
      dma: { read: (_iova, len) => new Uint8Array(len), write() {} },
    });
    const msi = model.config.msiOffset;
    if (msi !== undefined)
      model.write(7, msi + 2, Uint8Array.of(1, 0)); // MSI enable (PCI 6.8.1.3)
    else
      notes.push(`${name}: no MSI capability, raises go to INTx (level: only the first signals)`);
    const out = new Uint8Array(4);
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, access.raiseValue, true);
    cases.push({
      key: `${name}-model-read`,
      label: `${name}: device model (createPluginDevice)`,
      op: 'read 4 B (no import)',
      fn: () => model.read(0, access.read, out),
    });
    cases.push({
      key: `${name}-model-raise`,
      label: `${name}: device model (createPluginDevice)`,
      op: 'write 4 B -> irq.raise -> MSI',
      fn: () => model.write(0, access.raise, data),
      count: sink,
      perCall: msi === undefined ? 0 : 1,
    });
  }

  // jco glue: 1.12 (chosen) against the newest, both raw (no engine), on edu
  const jcoRows = [];
  const eduBytes = readFileSync(eduPath);
  const repoJco = JSON.parse(
    readFileSync(join(root, 'node_modules', '@bytecodealliance', 'jco', 'package.json'), 'utf8'),
  ).version;
  const glues = [{ version: repoJco, load: () => import('@bytecodealliance/jco') }];
  try {
    const newest = newestJco(cacheRoot);
    glues.push({ version: newest.version, load: () => import(pathToFileURL(newest.entry).href) });
  } catch (err) {
    notes.push(`jco ${JCO_NEWEST}: n/a (${errText(err)})`);
    jcoRows.push({ version: JCO_NEWEST, status: `n/a (${errText(err)})` });
  }
  for (const g of glues) {
    try {
      const { transpile } = await g.load();
      const count = { raised: 0 };
      const dev = await rawGlue(
        transpile,
        eduBytes,
        join(tmp, `glue-${g.version}`),
        nullHost(count),
      );
      const label = `edu: raw jco ${g.version} glue${g.version === repoJco ? ' (chosen)' : ''}`;
      cases.push({
        key: `jco-${g.version}-read`,
        label,
        op: 'region-read (no import)',
        fn: () => dev.regionRead(0, 0n, 4),
        jco: g.version,
      });
      cases.push({
        key: `jco-${g.version}-raise`,
        label,
        op: 'region-write -> irq.raise',
        fn: () => dev.regionWrite(0, 0x60n, 4, 1n),
        count,
        perCall: 1,
        jco: g.version,
      });
    } catch (err) {
      notes.push(`jco ${g.version}: n/a (${errText(err)})`);
      jcoRows.push({ version: g.version, status: `n/a (${errText(err)})` });
    }
  }

  // ---------- per-call timing ----------
  for (const c of cases) {
    // warm up for warmMs (JIT and wasm tier-up take a while for the slower paths), then size a
    // sample to about sampleMs
    const per = warmUp(c.fn, warmMs);
    c.n = Math.max(2000, Math.min(5_000_000, Math.round((sampleMs * 1e6) / per)));
    c.samples = [];
    if (c.count) c.count.raised = 0;
  }
  log(`per-call: ${cases.length} cases x ${reps} reps, about ${sampleMs} ms per sample`);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < cases.length; k++) {
      const c = cases[(k + r) % cases.length];
      c.samples.push(timeLoop(c.fn, c.n));
    }
  }
  for (const c of cases) {
    c.stat = stat(c.samples);
    if (c.count) {
      const expected = c.perCall * c.n * reps;
      c.importsPerCall = c.count.raised / (c.n * reps);
      if (c.count.raised !== expected) {
        notes.push(`${c.key}: expected ${expected} raises, saw ${c.count.raised}`);
      }
    }
  }

  // ---------- cold start ----------
  const cold = [];
  for (const [name, { path, loaded }] of Object.entries(loadedPlugins)) {
    log(`cold start of ${name}: ${coldReps} x (uncached, cached) in fresh processes`);
    const warm = join(tmp, `cold-warm-${name}`);
    const child = (cacheDir) =>
      JSON.parse(
        execFileSync(process.execPath, [self, '--cold-child', path, cacheDir], {
          cwd: root,
          encoding: 'utf8',
        }),
      );
    child(warm); // fills the warm cache
    const runs = { uncached: [], cached: [] };
    for (let r = 0; r < coldReps; r++) {
      const order = r % 2 === 0 ? ['uncached', 'cached'] : ['cached', 'uncached'];
      for (const mode of order) {
        const dir = mode === 'cached' ? warm : mkdtempSync(join(tmp, 'cold-empty-'));
        runs[mode].push(child(dir));
        if (mode === 'uncached') rmSync(dir, { recursive: true, force: true });
      }
    }
    const inst = [];
    loaded.compiled.instantiate(nullHost(), { memoryBytes: memOf(loaded) }).dispose(); // warm-up
    for (let r = 0; r < instReps; r++) {
      const t0 = performance.now();
      const i = loaded.compiled.instantiate(nullHost(), { memoryBytes: memOf(loaded) });
      i.describe();
      inst.push(performance.now() - t0);
      i.dispose();
    }
    cold.push({
      plugin: name,
      sizeBytes: statSync(path).size,
      uncached: stat(runs.uncached.map((x) => x.totalMs)),
      cached: stat(runs.cached.map((x) => x.totalMs)),
      instantiate: stat(inst),
      runs,
    });
  }
  rmSync(tmp, { recursive: true, force: true });

  // ---------- tables ----------
  const byKey = Object.fromEntries(cases.map((c) => [c.key, c]));
  const napi = byKey.napi?.stat.median;
  const wasmJs = byKey['wasm-js'].stat.median;
  const fmtNs = (s) => {
    const v = s.median >= 100 ? s.median.toFixed(0) : s.median.toFixed(1);
    return `${v} ns ±${spreadPct(s)}%`;
  };
  const fmtMs = (s) => `${s.median.toFixed(s.median >= 100 ? 0 : 2)} ms ±${spreadPct(s)}%`;
  const x = (v, base) => {
    if (base === undefined) return 'n/a';
    const r = v / base;
    return `${r.toFixed(r < 1 ? 2 : r < 100 ? 1 : 0)}x`;
  };
  const row = (...cells) => `| ${cells.join(' | ')} |`;
  const lines = [
    '',
    `Per trapped access, in-thread, ${reps} reps, medians (±half the min-max spread);`,
    `"x" = ns / the floor's ns; ratio base: ${nativeNote}`,
    '',
    row('path', 'op', 'ns/call', 'x N-API call', 'x wasm->JS call'),
    row('---', '---', '---', '---', '---'),
  ];
  for (const c of cases) {
    lines.push(row(c.label, c.op, fmtNs(c.stat), x(c.stat.median, napi), x(c.stat.median, wasmJs)));
  }
  if (tsRow.status !== 'measured') {
    const what = `TS plugin (${tsRow.name}): engine instance, device model`;
    lines.push(row(what, '-', tsRow.status, '-', '-'));
  }

  lines.push(
    '',
    `jco glue on edu, raw (no engine), ${reps} reps, medians; ratio = newest / chosen`,
    '',
  );
  lines.push(row('op', `jco ${repoJco} (chosen)`, `jco ${JCO_NEWEST} (newest)`, 'ratio'));
  lines.push(row('---', '---', '---', '---'));
  for (const op of ['read', 'raise']) {
    const a = byKey[`jco-${repoJco}-${op}`];
    const b = byKey[`jco-${JCO_NEWEST}-${op}`];
    lines.push(
      row(
        op === 'read' ? 'region-read ident' : 'region-write 0x60 -> irq.raise',
        a ? fmtNs(a.stat) : 'n/a',
        b ? fmtNs(b.stat) : 'n/a',
        a && b ? x(b.stat.median, a.stat.median) : 'n/a',
      ),
    );
  }

  lines.push(
    '',
    `Cold start to a live instance (describe() answered), medians: ${coldReps} fresh processes`,
    `per cache state, instantiate only ${instReps} times in this process; "x" = ms / instantiate ms;`,
    '(parts: import of the host modules + loadPlugin + first instantiate, medians in ms)',
    '',
    row('plugin', 'wasm bytes', 'empty cache', 'warm cache', 'instantiate only', 'x empty / warm'),
    row('---', '---', '---', '---', '---', '---'),
  );
  // each cold figure with its median parts: importing the host modules, loadPlugin (read, hash,
  // manifest, transpile or cache hit), the first instantiate (compiles the capped core modules)
  const parts = (runs) => {
    const m = (k) => median(runs.map((r) => r[k])).toFixed(1);
    return `(${m('importMs')} + ${m('loadMs')} + ${m('instantiateMs')})`;
  };
  for (const c of cold) {
    const base = c.instantiate.median;
    lines.push(
      row(
        c.plugin,
        String(c.sizeBytes),
        `${fmtMs(c.uncached)} ${parts(c.runs.uncached)}`,
        `${fmtMs(c.cached)} ${parts(c.runs.cached)}`,
        fmtMs(c.instantiate),
        `${x(c.uncached.median, base)} / ${x(c.cached.median, base)}`,
      ),
    );
  }
  if (tsRow.status !== 'measured') {
    lines.push(row(`TS plugin (${tsRow.name})`, '-', tsRow.status, '-', '-', '-'));
  }
  if (notes.length) lines.push('', ...notes.map((n) => `note: ${n}`));
  process.stdout.write(`${lines.join('\n')}\n`);

  const outDir = join(root, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `plugins-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        host: hostname(),
        node: process.version,
        mode: values.quick ? 'quick' : 'full',
        reps,
        jco: { chosen: repoJco, newest: JCO_NEWEST },
        native: nativeNote,
        cases: cases.map((c) => ({
          key: c.key,
          label: c.label,
          op: c.op,
          n: c.n,
          importsPerCall: c.importsPerCall,
          ...c.stat,
        })),
        cold,
        notes,
      },
      null,
      2,
    )}\n`,
  );
  log(`raw results: ${outFile}`);
}

if (values['cold-child']) await coldChild(positionals[0], positionals[1]);
else await main();

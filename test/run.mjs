#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The one test command (README, CI): runs every tier and prints one plain line
// `N passed, N failed, N skipped` last. Exits non-zero on any failure, on a run that executed no
// test, and (with VFIOBOX_LAB=required, the default under CI=true) when a lab tier cannot run.
//
// Tiers (test/README.md):
//   native-cc  C++ unit tests under ASan/UBSan           (bash native/test/run.sh)
//   unit       pure TypeScript                             (uvu build/test unit/)
//   native     the addon against the fake kernel            (uvu build/test native/)
//   plugins    plugin components on the V8 engine          (uvu build/test plugins/)
//   plugins-wasmtime  the same files on the wasmtime engine (VFIOBOX_ENGINE=wasmtime uvu … plugins/)
//   vfio-user  the vfio-user server and client over real sockets (uvu build/test vfio-user/)
//   lab-*      real kernel VFIO in a QEMU TCG guest         (test/lab/run-in-guest.sh … uvu build/test lab/)
//   lab-vu     vfiobox serve under QEMU 11's vfio-user-pci  (uvu build/test lab-vu/ → test/lab-vu/boot.sh)
//
// Usage: node test/run.mjs [--only tier,tier] [--skip tier,tier] [--in-guest]
//   --in-guest   (used by the lab) run only the lab/ files, here, and print the summary line.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const uvuBin = join(root, 'node_modules', 'uvu', 'bin.js');

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    skip: { type: 'string' },
    'in-guest': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: node test/run.mjs [--only t1,t2] [--skip t1,t2]\n' +
      'tiers: native-cc unit native plugins plugins-wasmtime vfio-user lab-iommu lab-noiommu\n' +
      '       lab-stock lab-vu\n' +
      'env: VFIOBOX_LAB=required|auto|off (required when CI=true), VFIOBOX_LAB_MODES=iommu,noiommu,stock\n',
  );
  process.exit(0);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Runs a command, streams its output, returns {code, text}. */
function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      text += d;
      process.stderr.write(d);
    });
    child.on('close', (code, signal) =>
      resolve({ code: code ?? 128, signal, text: stripAnsi(text) }),
    );
    child.on('error', (err) => resolve({ code: 127, text: String(err) }));
  });
}

/** Parses uvu's "Total/Passed/Skipped" block. */
function uvuCounts(text) {
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(passed)) return null;
  return { passed, failed: total - passed, skipped };
}

/** Parses our own plain line (native C++ tests and the in-guest run print it). */
function plainCounts(text) {
  const all = [...text.matchAll(/^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm)];
  const m = all.at(-1);
  if (!m) return null;
  return { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) };
}

function hasTests(tier) {
  const dir = join(root, 'build', 'test', tier);
  return existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.test.js'));
}

/** uvu over build/test/<dir>/*.test.js; `env` selects what the files run on (VFIOBOX_ENGINE). */
async function uvuTier(dir, env = {}) {
  if (!hasTests(dir)) return { passed: 0, failed: 0, skipped: 0, note: 'no test files' };
  const r = await run(
    process.execPath,
    [uvuBin, 'build/test', `^${dir}/.*\\.test\\.js$`, '--no-color'],
    env,
  );
  const c = uvuCounts(r.text);
  if (!c)
    return { passed: 0, failed: 1, skipped: 0, note: `uvu exited ${r.code} without a summary` };
  // uvu swallows errors thrown in before() hooks, but its exit code still says "failed".
  if (r.code !== 0 && c.failed === 0) c.failed = 1;
  return c;
}

function labPolicy() {
  const v = process.env.VFIOBOX_LAB ?? (process.env.CI === 'true' ? 'required' : 'auto');
  if (!['required', 'auto', 'off'].includes(v)) {
    process.stderr.write(`test/run.mjs: VFIOBOX_LAB must be required, auto or off (got ${v})\n`);
    process.exit(2);
  }
  return v;
}

/** Why the lab cannot run here, or null. */
function labBlocker() {
  if (process.getuid?.() !== 0)
    return 'not root (the lab installs QEMU with apt and builds kernel modules)';
  if (!existsSync('/usr/bin/apt-get') && !existsSync('/usr/bin/qemu-system-x86_64'))
    return 'neither apt-get nor qemu-system-x86_64 is available';
  return null;
}

async function labTier(mode) {
  const env =
    mode === 'stock' ? { VFIOLAB_MODE: 'iommu', VFIOLAB_VFIO: 'stock' } : { VFIOLAB_MODE: mode };
  process.stdout.write(
    `\n# lab-${mode}: booting a QEMU TCG guest (first run builds the kernel side, ~1 min)\n`,
  );
  const r = await run(
    'bash',
    [join(root, 'test/lab/run-in-guest.sh'), process.execPath, 'test/run.mjs', '--in-guest'],
    {
      ...env,
      VFIOLAB_TIMING: '1',
      VFIOLAB_PASSENV: 'CI VFIOBOX_LAB VFIOBOX_BENCH',
    },
  );
  const c = plainCounts(r.text);
  if (!c)
    return {
      passed: 0,
      failed: 1,
      skipped: 0,
      note: `guest run exited ${r.code} with no summary line`,
    };
  if (r.code !== 0 && c.failed === 0) c.failed = 1;
  return c;
}

/** lab-vu: vfiobox serve under a real VMM (QEMU 11 from a sid chroot), run from the host. */
async function labVuTier() {
  process.stdout.write(
    '\n# lab-vu: vfiobox serve under QEMU vfio-user-pci (first run debootstraps sid, ~1 min)\n',
  );
  return uvuTier('lab-vu');
}

async function inGuest() {
  const c = await uvuTier('lab');
  const total = c.passed + c.failed;
  process.stdout.write(`${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped\n`);
  process.exit(c.failed > 0 || total === 0 ? 1 : 0);
}

async function main() {
  if (values['in-guest']) return inGuest();
  const only = values.only?.split(',');
  const skip = new Set(values.skip?.split(',') ?? []);
  const policy = labPolicy();
  const labModes = (process.env.VFIOBOX_LAB_MODES ?? 'iommu,noiommu,stock').split(',');
  const tiers = [
    [
      'native-cc',
      async () => {
        const r = await run('bash', ['native/test/run.sh']);
        return plainCounts(r.text) ?? { passed: 0, failed: 1, skipped: 0, note: `exit ${r.code}` };
      },
    ],
    ['unit', () => uvuTier('unit')],
    ['native', () => uvuTier('native')],
    ['plugins', () => uvuTier('plugins', { VFIOBOX_ENGINE: 'v8' })],
    // the plugins files again on wasmtime (test/plugins/support.ts reads VFIOBOX_ENGINE)
    ['plugins-wasmtime', () => uvuTier('plugins', { VFIOBOX_ENGINE: 'wasmtime' })],
    ['vfio-user', () => uvuTier('vfio-user')],
    ...labModes.map((m) => [`lab-${m}`, () => labTier(m)]),
    ['lab-vu', () => labVuTier()],
  ].filter(([name]) => (!only || only.includes(name)) && !skip.has(name));

  const totals = { passed: 0, failed: 0, skipped: 0 };
  const lines = [];
  const blocker = labBlocker();
  for (const [name, fn] of tiers) {
    let c;
    if (name.startsWith('lab-') && (policy === 'off' || blocker)) {
      const why = policy === 'off' ? 'VFIOBOX_LAB=off' : blocker;
      if (policy === 'required') {
        c = { passed: 0, failed: 1, skipped: 0, note: `LAB REQUIRED BUT CANNOT RUN: ${why}` };
      } else {
        process.stderr.write(
          `\n!!!!!!!! SKIPPING ${name}: ${why}. Real-kernel tests did NOT run. !!!!!!!!\n`,
        );
        c = { passed: 0, failed: 0, skipped: 1, note: `SKIPPED: ${why}` };
      }
    } else {
      c = await fn();
    }
    totals.passed += c.passed;
    totals.failed += c.failed;
    totals.skipped += c.skipped;
    lines.push(
      `  ${name.padEnd(16)} ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.note ? `  (${c.note})` : ''}`,
    );
  }
  process.stdout.write(`\n# tiers\n${lines.join('\n')}\n`);
  const ran = totals.passed + totals.failed;
  if (ran === 0) process.stdout.write('# no test ran: failing the run\n');
  process.stdout.write(
    `${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`,
  );
  process.exit(totals.failed > 0 || ran === 0 ? 1 : 0);
}

await main();

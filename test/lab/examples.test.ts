// SPDX-License-Identifier: MIT
// The passthrough example (examples/edu-passthrough/edu.mjs), run as its README says inside the
// lab guest, once per backend this boot offers, so the example cannot rot: every step it prints
// must carry the value the real edu device gives.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { labBackends, labDevices } from '../helpers/lab-env.js';
import { ROOT } from '../plugins/support.js';

const test = suite('examples (passthrough, in the lab)');

function runExample(bdf: string, backend: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'examples/edu-passthrough/edu.mjs'), bdf, '--backend', backend],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

const dev = labDevices()[0];
if (dev !== undefined) {
  for (const backend of labBackends()) {
    test(`edu.mjs --backend ${backend} walks ident, liveness, factorial, DMA and MSI`, async () => {
      const r = await runExample(dev.bdf, backend);
      assert.is(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`through the ${backend} backend`));
      assert.match(r.out, /ident\s+pread 0x10000ed/);
      assert.match(r.out, /ident\s+mmap {2}0x10000ed/);
      assert.match(r.out, /wrote 0x12345678, read 0xedcba987/);
      assert.match(r.out, /10! = 3628800/);
      if (backend !== 'noiommu') {
        assert.match(r.out, /round trip: "hello from vfiobox through the IOMMU"/);
      }
      assert.match(r.out, /msi\s+eventfd fired/);
    });
  }
}

test.run();

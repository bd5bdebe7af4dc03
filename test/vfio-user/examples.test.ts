// SPDX-License-Identifier: MIT
// The runnable examples for the vfio-user scenario, run exactly as their README says (so they
// cannot rot): examples/edu-vfio-user/run.sh walks the demo, `vfiobox serve` + `demo --socket`,
// and the library client script; examples/scratchpad-mmap/run.sh maps a memory-backed BAR area;
// examples/csum-window/run.sh has a plugin read guest memory through a DMA window.
// The guest-side example (serial-vm) is the lab-vu tier's path.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../plugins/support.js';

const test = suite('examples (vfio-user)');

interface Run {
  code: number | null;
  out: string;
}

function runScript(rel: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(ROOT, rel)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

test('edu-vfio-user/run.sh: the demo twice (in-process and against serve) and the client script', async () => {
  const r = await runScript('examples/edu-vfio-user/run.sh');
  assert.is(r.code, 0, r.out);
  // Both demo walks pass every step, with no failed step.
  const summaries = r.out.match(/^(\d+) passed, (\d+) failed$/gm) ?? [];
  assert.is(summaries.length, 2, r.out);
  for (const line of summaries) assert.match(line, /^\d+ passed, 0 failed$/);
  assert.not.match(r.out, /^\s+FAIL\s/m);
  // serve's final stats line after SIGTERM, and the library client's own check.
  assert.match(r.out, /requests/);
  assert.match(r.out, /ident 0x10000ed, liveness\(0xcafe\) = 0xffff3501/);
});

test('scratchpad-mmap/client.mjs: the region fd mapped, bytes shared with the plugin both ways', async () => {
  const r = await runScript('examples/scratchpad-mmap/run.sh');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /mmap-able areas \[\{"offset":0,"size":4096\}\]/);
  assert.match(r.out, /after FILL\(0x41\) the mapping starts 41 42 43 44 45 46 47 48/);
});

test('csum-window/client.mjs: one DMA window on wasmtime, dma.read copies on v8, the same checksums', async () => {
  const r = await runScript('examples/csum-window/run.sh');
  assert.is(r.code, 0, r.out);
  assert.match(
    r.out,
    /^wasmtime 200\/200 checksums right, window maps 1, window hits 199, dma.read copies 0 /m,
  );
  assert.match(
    r.out,
    /^v8 +200\/200 checksums right, window maps 0, window hits 0, dma.read copies 200 /m,
  );
});

test.run();

// SPDX-License-Identifier: MIT
// `vfiobox serve`'s stats line (host/cli/commands/serve.ts formatStats): counts on the first
// sample, rates against the previous one, and the native-path counters shown only when they moved.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatStats } from '../../host/cli/commands/serve.js';
import type { DeviceRunStats } from '../../host/serve/spec.js';

const test = suite('serve stats line');

function sample(over: Partial<DeviceRunStats> = {}): DeviceRunStats {
  return {
    name: 'edu',
    socketPath: '/tmp/edu.sock',
    connected: true,
    device: {
      reads: 0,
      writes: 0,
      irqs: 2,
      denied: { dma: 1 },
      fences: 0,
      restarts: 0,
      fenced: false,
    },
    requests: { REGION_READ: 10, DMA_MAP: 3 },
    errors: {},
    regionAccesses: { '0': 10 },
    directAccesses: 0,
    directDma: 0,
    windowsMapped: 0,
    windowsRefused: 0,
    watchdogRestarts: 0,
    ...over,
  };
}

test('the first sample shows counts; the native counters stay out while they are 0', () => {
  const line = formatStats(sample(), undefined, 1);
  assert.match(
    line,
    /^edu {10}connected {3} {2}req 13 {2}r0:10 {2}irqs 2 {2}denied 1 {2}fences 0 {2}restarts 0$/,
  );
  assert.not.match(line, /direct|dma |windows/);
});

test('later samples show each region as a rate over the interval', () => {
  const line = formatStats(sample({ regionAccesses: { '0': 30 } }), sample(), 2);
  assert.match(line, /r0:10\/s/);
});

test('direct accesses, direct DMA and windows (with refusals) appear once they count', () => {
  const line = formatStats(
    sample({ directAccesses: 7, directDma: 5, windowsMapped: 2, windowsRefused: 1 }),
    undefined,
    1,
  );
  assert.match(line, /direct 7 {2}dma 5 {2}windows 2 \(1 refused\) {2}irqs/);
  assert.match(formatStats(sample({ windowsMapped: 1 }), undefined, 1), /windows 1 {2}irqs/);
  assert.match(formatStats(sample({ windowsRefused: 3 }), undefined, 1), /windows 0 \(3 refused\)/);
});

test.run();

#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// A memory-backed BAR area without a VM: serve the bundled scratchpad plugin (in this process),
// then do what a VMM does with its BAR2: GET_REGION_INFO, mmap the sparse area from the region
// fd, and share bytes with the plugin through it.
//   node examples/scratchpad-mmap/client.mjs            (after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevice, VfioUserClient } from '../../build/host/index.js';

const SUM = 0x04; // BAR0: FNV-1a 32 of the page, computed by the plugin
const FILL = 0x08; // BAR0: the plugin writes byte i = (value + i) & 0xff

function fnv1a(bytes) {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

const dir = mkdtempSync(join(tmpdir(), 'scratchpad-example-'));
const socketPath = join(dir, 'sp.sock');
const device = await startDevice({
  name: 'scratchpad',
  pluginPath: new URL('../../build/plugins/scratchpad.wasm', import.meta.url).pathname,
  socketPath,
});
const client = await VfioUserClient.connect(socketPath);
let info;
let page;
try {
  await client.negotiate();
  info = await client.regionInfo(2); // argsz retry, sparse mmap capability, the memfd
  console.log(`BAR2: ${info.sizeBytes} bytes, mmap-able areas ${JSON.stringify(info.caps.sparseMmap)}`);
  page = client.mapRegionArea(info, 0);
  const text = new TextEncoder().encode('written by the guest side, read by the plugin');
  page.write(0, text);
  const expected = fnv1a([...text, ...new Uint8Array(4096 - text.length)]);
  const sum = await client.read32(0, SUM);
  await client.write32(0, FILL, 0x41);
  const filled = page.read(0, 8);
  console.log(`plugin's SUM 0x${sum.toString(16)} (expected 0x${expected.toString(16)})`);
  console.log(`after FILL(0x41) the mapping starts ${[...filled].map((b) => b.toString(16)).join(' ')}`);
  if (sum !== expected || filled[0] !== 0x41 || filled[7] !== 0x48) process.exitCode = 1;
} finally {
  page?.close();
  if (info?.fd !== undefined) client.closeFd(info.fd);
  client.close();
  await device.close();
  rmSync(dir, { recursive: true, force: true });
}

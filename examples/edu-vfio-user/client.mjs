#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Scripting a plugin device without a VM: serve the bundled edu plugin on a socket (in this
// process, on this thread) and talk to it with the library's vfio-user client.
//   node examples/edu-vfio-user/client.mjs            (after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevice, VfioUserClient } from '../../build/host/index.js';

const dir = mkdtempSync(join(tmpdir(), 'edu-example-'));
const socketPath = join(dir, 'edu.sock');
const device = await startDevice({
  name: 'edu',
  pluginPath: new URL('../../build/plugins/edu.wasm', import.meta.url).pathname,
  socketPath,
});
const client = await VfioUserClient.connect(socketPath);
try {
  await client.negotiate();
  const ident = await client.read32(0, 0x00);
  await client.write32(0, 0x04, 0xcafe);
  const live = await client.read32(0, 0x04);
  console.log(`ident 0x${ident.toString(16)}, liveness(0xcafe) = 0x${live.toString(16)}`);
  if (ident !== 0x010000ed || live !== (~0xcafe >>> 0)) process.exitCode = 1;
} finally {
  client.close();
  await device.close();
  rmSync(dir, { recursive: true, force: true });
}

// SPDX-License-Identifier: MIT
// Hot reload through the control plane: a device served from a worker (DeviceSupervisor, as
// `vfiobox serve` runs it) swaps its plugin with the client still attached and the device state
// carried over; a plugin that fails to load leaves the old one serving.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServeEvent } from '../../host/serve/spec.js';
import { DeviceSupervisor } from '../../host/serve/supervisor.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
import { pluginPath } from '../plugins/support.js';

const test = suite('serve: hot reload');
const LIVENESS = 0x04;

let dir: string;
let device: DeviceSupervisor;
let client: VfioUserClient;
const events: ServeEvent[] = [];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfiobox-reload-'));
  copyFileSync(pluginPath('edu'), join(dir, 'edu.wasm'));
  device = new DeviceSupervisor({
    name: 'edu',
    pluginPath: join(dir, 'edu.wasm'),
    socketPath: join(dir, 'edu.sock'),
  });
  device.on('event', (e: ServeEvent) => events.push(e));
  await device.start();
  client = await VfioUserClient.connect(join(dir, 'edu.sock'));
  await client.negotiate();
});

test.after(async () => {
  client.close();
  await device.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a reload keeps the device state and the client connection', async () => {
  await client.write32(0, LIVENESS, 0x1234);
  copyFileSync(pluginPath('edu'), join(dir, 'edu-v2.wasm'));
  await device.reload(join(dir, 'edu-v2.wasm'));
  assert.ok(events.some((e) => e.event === 'reloaded'));
  assert.is(await client.read32(0, LIVENESS), ~0x1234 >>> 0, 'state carried by save/load-state');
  const stats = await device.stats();
  assert.is(stats?.connected, true);
});

test('a plugin that fails to load leaves the old one serving', async () => {
  const bad = join(dir, 'bad.wasm');
  writeFileSync(bad, 'not a component');
  let failed: unknown;
  try {
    await device.reload(bad);
  } catch (err) {
    failed = err;
  }
  assert.ok(failed instanceof Error, 'the reload rejects');
  assert.is(await client.read32(0, 0x00), 0x010000ed, 'the old plugin still answers');
});

test.run();

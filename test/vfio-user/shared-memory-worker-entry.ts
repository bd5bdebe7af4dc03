// SPDX-License-Identifier: MIT
// Worker side of shared-memory.test.ts's restart test: the scratchpad plugin behind a persistent
// VfioUserServer, as `vfiobox serve` runs a device (workerData {path, adopt}). Posts {event}
// 'listening', 'connect' and 'adopt'; the test terminates the worker as the watchdog would.
import { parentPort, workerData } from 'node:worker_threads';
import { createPluginDevice } from '../../host/device/model.js';
import { grantFromManifest } from '../../host/plugins/grants.js';
import { loadPlugin } from '../../host/plugins/loader.js';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { CACHE_DIR, pluginPath } from '../plugins/support.js';

const port = parentPort;
if (!port) throw new Error('not a worker');
const { path, adopt } = workerData as { path: string; adopt: boolean };
const loaded = await loadPlugin(pluginPath('scratchpad'), { cacheDir: CACHE_DIR });
const device = createPluginDevice({
  name: 'scratchpad',
  plugin: loaded.compiled,
  grant: grantFromManifest(loaded.manifest),
});
const server = new VfioUserServer(device, { socketPath: path, persistent: true, adopt });
server.on('connect', () => port.postMessage({ event: 'connect' }));
server.on('adopt', () => port.postMessage({ event: 'adopt' }));
server.listen();
port.postMessage({ event: 'listening' });

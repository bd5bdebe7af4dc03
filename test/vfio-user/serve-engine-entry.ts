// SPDX-License-Identifier: MIT
// Worker side of serve-engine.test.ts, in place of host/serve/device-worker.ts: a DeviceControl
// that runs no device but reports the spec each worker got ({event: 'started', engine, adopt}
// on the events port). The first worker (not adopting) exits right after starting, as a
// crashed device worker would, so that the supervisor restarts it.
import { parentPort, workerData } from 'node:worker_threads';
import { expose } from 'comlink';
import type { DeviceControl, WorkerData } from '../../host/serve/device-worker.js';
import { nodeEndpoint } from '../../host/serve/endpoint.js';

const port = parentPort;
if (!port) throw new Error('serve-engine-entry.ts must run in a worker thread');
const data = workerData as WorkerData;

const control: DeviceControl = {
  async start(spec) {
    const adopt = spec.adopt ?? false;
    data.events.postMessage({ event: 'started', device: spec.name, engine: spec.engine, adopt });
    // after this call's reply has been posted
    if (!adopt) setImmediate(() => process.exit(1));
  },
  stats: () => undefined,
  async reload() {},
  async stop() {},
};

expose(control, nodeEndpoint(port));

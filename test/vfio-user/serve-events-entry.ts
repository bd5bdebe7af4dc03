// SPDX-License-Identifier: MIT
// Worker side of serve-events.test.ts, in place of host/serve/device-worker.ts. The first worker
// (not adopting) posts a run of numbered events and config-state snapshots on the events port,
// then dies in the same turn, as a device worker that crashes right after a config write would.
// Before it answers start() it writes its thread id to `<socketPath>.tid`, so that the test can
// hold the main thread until this thread is gone. The restarted worker reports the config state
// its spec carried. A device named DIES_STARTING dies inside start(), before it answers.
import { readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { expose } from 'comlink';
import type { DeviceControl, WorkerData } from '../../host/serve/device-worker.js';
import { nodeEndpoint } from '../../host/serve/endpoint.js';
import { CONFIG_STATE_EVENT } from '../../host/serve/spec.js';

/** How many numbered events the first worker posts before it dies (serve-events.test.ts: BURST). */
const BURST = 64;

/** serve-events.test.ts: a device of this name exits with code 3 before start() replies. */
const DIES_STARTING = 'dies-starting';

const port = parentPort;
if (!port) throw new Error('serve-events-entry.ts must run in a worker thread');
const data = workerData as WorkerData;

const control: DeviceControl = {
  async start(spec) {
    if (spec.name === DIES_STARTING) process.exit(3);
    if (spec.adopt) {
      const state = spec.configState ? Array.from(spec.configState) : null;
      data.events.postMessage({ event: 'adopted', device: spec.name, state });
      return;
    }
    writeFileSync(`${spec.socketPath}.tid`, basename(readlinkSync('/proc/thread-self')));
    // after this call's reply has been posted, so that start() resolves first
    setImmediate(() => {
      for (let i = 0; i < BURST; i++) {
        data.events.postMessage({ event: 'burst', device: spec.name, seq: i });
        const bytes = Uint8Array.of(i, 0xa5);
        data.events.postMessage({ event: CONFIG_STATE_EVENT, device: spec.name, bytes });
      }
      process.exit(1);
    });
  },
  stats: () => undefined,
  async reload() {},
  async stop() {},
};

expose(control, nodeEndpoint(port));

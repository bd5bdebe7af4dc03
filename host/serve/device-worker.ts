// SPDX-License-Identifier: MIT
// Worker entry: one device per worker thread (a V8 plugin cannot be interrupted on its own
// thread, so the main thread watches it and can terminate it: DESIGN.md "Engines"). The
// socket, the device model and the plugin all live here, so requests never cross threads;
// comlink carries only the control plane (start, stats, reload, stop).

import { parentPort, workerData } from 'node:worker_threads';
import { expose } from 'comlink';
import { type RunningDevice, startDevice } from './device-runtime.js';
import { nodeEndpoint } from './endpoint.js';
import type { DeviceRunStats, DeviceSpec, ServeEvent } from './spec.js';

export interface WorkerData {
  heartbeat: SharedArrayBuffer;
  /** events are posted on this port (fire and forget), apart from comlink's request/reply */
  events: import('node:worker_threads').MessagePort;
}

/** The control plane a device worker exposes. */
export interface DeviceControl {
  start(spec: DeviceSpec): Promise<void>;
  stats(): DeviceRunStats | undefined;
  reload(pluginPath: string): Promise<void>;
  stop(): Promise<void>;
}

if (!parentPort) throw new Error('device-worker.ts must run in a worker thread');
const data = workerData as WorkerData;
const heartbeat = new Int32Array(data.heartbeat);
let running: RunningDevice | undefined;

const control: DeviceControl = {
  async start(spec) {
    if (running) throw new Error(`device ${spec.name} already started`);
    running = await startDevice(spec, {
      heartbeat,
      onEvent: (event: ServeEvent) => data.events.postMessage(event),
    });
  },
  stats: () => running?.stats(),
  async reload(pluginPath) {
    if (!running) throw new Error('device not started');
    await running.reload(pluginPath);
  },
  async stop() {
    await running?.close();
    running = undefined;
  },
};

expose(control, nodeEndpoint(parentPort));

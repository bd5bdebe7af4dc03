// SPDX-License-Identifier: MIT
// Worker side of server-inline.test.ts: a VfioUserServer over a RamDevice on this worker's loop.
// {armTimer: ms} in -> a timer on this loop; when it fires: {event: 'timer', reads} out (the
// device's REGION_READ count then). {stats: true} in -> {stats} out.
import { parentPort, workerData } from 'node:worker_threads';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { RamDevice } from './server-fixture.js';

const port = parentPort;
if (!port) throw new Error('not a worker');
const device = new RamDevice();
let reads = 0;
const counted: RamDevice['read'] = device.read.bind(device);
device.read = (region, offset, out) => {
  reads++;
  counted(region, offset, out);
};
const server = new VfioUserServer(device, { socketPath: (workerData as { path: string }).path });
server.listen();
server.on('connect', () => port.postMessage({ event: 'connect' }));
port.on('message', (msg: { armTimer?: number; stats?: boolean }) => {
  if (msg.armTimer !== undefined) {
    setTimeout(() => port.postMessage({ event: 'timer', reads }), msg.armTimer);
  }
  if (msg.stats) port.postMessage({ event: 'stats', stats: server.stats() });
});
port.postMessage({ event: 'listening' });

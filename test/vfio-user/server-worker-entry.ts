// SPDX-License-Identifier: MIT
// Worker side of server-worker.test.ts: a VfioUserServer over a RamDevice on this worker's
// own event loop. Messages: {socketPath} in -> 'listening' out; {dmaRead: [iova, len]} in ->
// {bytes} or {error: code} out.
import { parentPort, workerData } from 'node:worker_threads';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { RamDevice } from './server-fixture.js';

const port = parentPort;
if (!port) throw new Error('not a worker');
const device = new RamDevice();
const server = new VfioUserServer(device, { socketPath: (workerData as { path: string }).path });
server.listen();
server.on('connect', () => port.postMessage({ event: 'connect' }));
port.on('message', (msg: { dmaRead?: [bigint, number] }) => {
  if (!msg.dmaRead) return;
  const io = device.io;
  try {
    if (!io) throw new Error('not attached');
    port.postMessage({ bytes: io.dma.read(msg.dmaRead[0], msg.dmaRead[1]) });
  } catch (err) {
    port.postMessage({ error: (err as { code?: string }).code ?? String(err) });
  }
});
port.postMessage({ event: 'listening' });

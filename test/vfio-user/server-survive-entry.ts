// SPDX-License-Identifier: MIT
// Worker side of server-survive.test.ts: a persistent VfioUserServer over a RamDevice whose
// read of BAR0 + SPIN_OFFSET never returns (a busy loop, as a runaway plugin would spin), so
// only terminating the worker stops it. workerData {path, adopt}. Out: {event} for
// 'listening', 'connect', 'adopt', 'spinning'; in: {dmaRead: [iova, len]} -> {bytes},
// {trigger: [index, sub]} -> {triggered}, {stats: true} -> {stats}, {close: true} -> {closed}.
import { parentPort, workerData } from 'node:worker_threads';
import { VfioUserServer } from '../../host/vfio-user/server.js';
import { RamDevice } from './server-fixture.js';

/** the same offset as server-survive.test.ts */
const SPIN_OFFSET = 0x100;

const port = parentPort;
if (!port) throw new Error('not a worker');
const { path, adopt } = workerData as { path: string; adopt: boolean };

class SpinningDevice extends RamDevice {
  spins = 0;
  override read(region: number, offset: number, out: Uint8Array): void {
    if (region === 0 && offset === SPIN_OFFSET) {
      port?.postMessage({ event: 'spinning' });
      for (;;) this.spins++;
    }
    super.read(region, offset, out);
  }
}

const device = new SpinningDevice();
const server = new VfioUserServer(device, { socketPath: path, persistent: true, adopt });
server.on('connect', () => port.postMessage({ event: 'connect' }));
server.on('adopt', () => port.postMessage({ event: 'adopt' }));
server.listen();
port.on('message', (msg: Record<string, unknown>) => {
  const io = device.io;
  if (Array.isArray(msg.dmaRead) && io) {
    port.postMessage({ bytes: io.dma.read(msg.dmaRead[0] as bigint, msg.dmaRead[1] as number) });
  } else if (Array.isArray(msg.trigger) && io) {
    const [index, sub] = msg.trigger as [number, number];
    port.postMessage({ triggered: io.irq.trigger(index, sub) });
  } else if (msg.stats) {
    port.postMessage({ stats: server.stats() });
  } else if (msg.close) {
    server.close();
    port.postMessage({ closed: true });
  }
});
port.postMessage({ event: 'listening' });

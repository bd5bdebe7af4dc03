// SPDX-License-Identifier: MIT
// The native vfio-user server on a temporary socket, with a tiny device, plus helpers to connect
// a negotiated client and to close one and wait until the server has let go of it, and to serve
// a device to a client that has mapped guest memory (a memfd) for it.

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceModel } from '../../host/device/types.js';
import { dma, VfioUserClient } from '../../host/vfio-user/client.js';
import type { Memfd } from '../../host/vfio-user/guest-memory.js';
import { DMA_FLAG_READ, DMA_FLAG_WRITE } from '../../host/vfio-user/protocol.js';
import { VfioUserServer } from '../../host/vfio-user/server.js';

export interface Running {
  server: VfioUserServer;
  path: string;
  /** connects and negotiates */
  connect(opts?: { timeoutMs?: number }): Promise<VfioUserClient>;
  /** closes `client` and resolves once the server reports the disconnect */
  hangUp(client: VfioUserClient): Promise<void>;
  stop(): void;
}

export function startServer(
  device: DeviceModel,
  opts: { maxDataXferSize?: number; maxDmaMaps?: number; resetOnDisconnect?: boolean } = {},
): Running {
  const dir = mkdtempSync(join(tmpdir(), 'vu-srv-'));
  const path = join(dir, 'vfio-user.sock');
  const server = new VfioUserServer(device, { socketPath: path, ...opts });
  server.listen();
  return {
    server,
    path,
    async connect(copts = {}) {
      const connected = once(server, 'connect');
      const client = await VfioUserClient.connect(path, copts);
      await connected;
      await client.negotiate();
      return client;
    },
    async hangUp(client) {
      if (!server.connected) {
        client.close();
        return;
      }
      const gone = once(server, 'disconnect');
      client.close();
      await gone;
    },
    stop() {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ServedWithMemory<M extends DeviceModel> {
  model: M;
  run: Running;
  /** the connected client; a test that reconnects puts the new one here, for done() */
  client: VfioUserClient;
  mem: Memfd;
  /** hangs up the current client, stops the server, closes the model and the memory */
  done(): Promise<void>;
}

/**
 * Serves `model` and connects a client that maps `bytes` of guest memory (a memfd, sealed
 * against shrinking unless `seal` is false, as QEMU's memory-backend-memfd) at `iova`, read and
 * write, with the fd.
 */
export async function serveWithMemory<M extends DeviceModel & { close(): void }>(
  model: M,
  opts: { bytes: number; iova?: bigint; seal?: boolean },
): Promise<ServedWithMemory<M>> {
  const run = startServer(model);
  const client = await run.connect();
  const mem = dma.memfd(opts.bytes);
  if (opts.seal ?? true) mem.seal();
  await client.dmaMap({
    iova: opts.iova ?? 0n,
    sizeBytes: opts.bytes,
    flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
    fd: mem.fd,
  });
  const served: ServedWithMemory<M> = {
    model,
    run,
    client,
    mem,
    async done() {
      await run.hangUp(served.client);
      run.stop();
      model.close();
      mem.close();
    },
  };
  return served;
}

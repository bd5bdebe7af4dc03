// SPDX-License-Identifier: MIT
// The native vfio-user server on a temporary socket, with a tiny device, plus helpers to connect
// a negotiated client and to close one and wait until the server has let go of it.

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceModel } from '../../host/device/types.js';
import { VfioUserClient } from '../../host/vfio-user/client.js';
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

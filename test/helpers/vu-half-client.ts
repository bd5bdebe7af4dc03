// SPDX-License-Identifier: MIT
// A child process for malformed.test.ts: connects to the socket in argv[2], negotiates, sends the
// first half of a REGION_WRITE and prints "sent"; then idles until the parent SIGKILLs it.

import { VfioUserClient } from '../../host/vfio-user/client.js';
import * as p from '../../host/vfio-user/protocol.js';

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error('usage: vu-half-client.js SOCKET');
const client = await VfioUserClient.connect(socketPath);
await client.negotiate();
const payload = p.encodeRegionAccess({
  offset: 4n,
  region: 0,
  data: new Uint8Array(64).fill(0xee),
});
const msg = p.encodeMessage(
  { msgId: 1, command: p.Command.REGION_WRITE, flags: 0, error: 0 },
  payload,
);
client.sendRaw(msg.subarray(0, msg.byteLength >> 1));
process.stdout.write('sent\n');
setInterval(() => {}, 60_000);

// SPDX-License-Identifier: MIT
// Shared by the codec modules (not re-exported by protocol.ts): host byte order, views, errors.

import { constants, endianness } from 'node:os';
import { ProtocolError } from '../../errors.js';
import { opName } from './commands.js';

export const LE = endianness() === 'LE';
const { EINVAL } = constants.errno;

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function fail(command: number, message: string): never {
  throw new ProtocolError(opName(command), EINVAL, message);
}

export function allocate(size: number): [Uint8Array, DataView] {
  const bytes = new Uint8Array(size);
  return [bytes, viewOf(bytes)];
}

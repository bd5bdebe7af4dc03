// SPDX-License-Identifier: MIT
// comlink speaks the DOM MessagePort shape (addEventListener, `{ data }` events); Node's
// worker_threads ports use `on('message', data)`. This is the small adapter between the two,
// and where vfiobox's error classes are taught to cross it (error-transfer.ts).

import type { MessagePort, Worker } from 'node:worker_threads';
import type { Endpoint } from 'comlink';
import { installErrorTransfer } from './error-transfer.js';

type Listener = (event: { data: unknown }) => void;
type ListenerLike = Listener | { handleEvent: Listener };

/** A comlink Endpoint over a worker_threads Worker or MessagePort (parentPort). */
export function nodeEndpoint(port: Worker | MessagePort): Endpoint {
  installErrorTransfer(); // both ends of every channel go through here
  const wrapped = new WeakMap<ListenerLike, (data: unknown) => void>();
  return {
    postMessage(message: unknown, transfer?: unknown[]) {
      port.postMessage(message, transfer as never);
    },
    addEventListener(_type: string, listener: ListenerLike) {
      const fn = (data: unknown) => {
        if (typeof listener === 'function') listener({ data });
        else listener.handleEvent({ data });
      };
      wrapped.set(listener, fn);
      port.on('message', fn);
    },
    removeEventListener(_type: string, listener: ListenerLike) {
      const fn = wrapped.get(listener);
      if (fn) port.off('message', fn);
      wrapped.delete(listener);
    },
  } as unknown as Endpoint;
}

// SPDX-License-Identifier: MIT
// The V8 engine's import object (host/plugins/engines/v8-imports.ts) as jco's glue sees it,
// without a component: a host import's `err(case)` is what it throws with an own `payload`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { HostImports } from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';
import { bindImports } from '../../host/plugins/engines/v8-imports.js';
import { thrown } from '../helpers/thrown.js';

const test = suite('v8 imports');

type Fn = (...args: unknown[]) => unknown;

/**
 * What jco 1.12's glue does with what a `result<_, E>` import threw (its getErrorPayload
 * intrinsic): an own `payload` is the err case; any other Error is rethrown (a trap).
 */
function errorPayload(e: unknown): unknown {
  if (e && Object.hasOwn(e as object, 'payload')) return (e as { payload: unknown }).payload;
  if (e instanceof Error) throw e;
  return e;
}

function setup() {
  const faults: string[] = [];
  const calls: string[] = [];
  const noop = () => undefined;
  const host: HostImports = {
    irq: { raise: noop, lower: noop, isMasked: () => false },
    dma: {
      read: (iova, len) => {
        calls.push(`read ${iova} ${len}`);
        return new Uint8Array(len);
      },
      write: () => {
        throw new WitError('not-granted');
      },
    },
    log: { log: noop },
    clock: { nowNs: () => 0n, setTimer: noop, cancelTimer: noop },
    byteStream: { write: () => 0, read: () => new Uint8Array(0) },
  };
  const imports = bindImports(host, { noteHostFault: (what) => void faults.push(what) });
  const dma = imports['vfiobox:device/dma'] as Record<string, Fn>;
  const call = (fn: string, ...args: unknown[]) => {
    const f = dma[fn];
    if (typeof f !== 'function') throw new TypeError(`dma has no function ${fn}`);
    return f(...args);
  };
  return { call, faults, calls };
}

test('dma.map-window and dma.unmap-window (0.1.2) answer err(unsupported) on V8', () => {
  const { call, faults, calls } = setup();
  assert.is(
    errorPayload(thrown(() => call('mapWindow', 0x10000n, 4096, 8192, true))),
    'unsupported',
  );
  assert.is(errorPayload(thrown(() => call('mapWindow', 0n, 4096, 0, false))), 'unsupported');
  assert.is(errorPayload(thrown(() => call('unmapWindow', 8192))), 'unsupported');
  assert.equal(faults, [], 'a returned error, not a host fault: the instance lives on');
  assert.equal(calls, [], 'nothing reached the host imports');
});

test('they err the way dma.write does, and dma.read still works', () => {
  const { call, faults, calls } = setup();
  assert.is(errorPayload(thrown(() => call('write', 0n, new Uint8Array(4)))), 'not-granted');
  assert.equal(call('read', 0x1000n, 4), new Uint8Array(4));
  assert.equal(calls, ['read 4096 4']);
  assert.equal(faults, []);
});

test.run();

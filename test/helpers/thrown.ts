// SPDX-License-Identifier: MIT
// The error a synchronous call throws; the test fails if it does not throw.
import * as assert from 'uvu/assert';

export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.unreachable('expected the call to throw');
  return undefined;
}

// SPDX-License-Identifier: MIT
// The little-endian helpers on the device model's per-access path: every width round-trips,
// values are truncated to the width, and all-ones has exactly 8 x width bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadLe, ones, storeLe } from '../../host/device/layout.js';

const test = suite('device layout: little-endian helpers');
const VALUES = [
  0n,
  1n,
  0xffn,
  0x1234n,
  0xdeadbeefn,
  0xffffffffn,
  0x123456789abcdef0n,
  2n ** 64n - 1n,
];

test('storeLe then loadLe gives the value truncated to the width, for widths 1 to 8', () => {
  for (let w = 1; w <= 8; w++) {
    for (const v of VALUES) {
      const bytes = new Uint8Array(w);
      storeLe(bytes, v);
      assert.is(loadLe(bytes), BigInt.asUintN(8 * w, v), `width ${w} value 0x${v.toString(16)}`);
    }
  }
});

test('storeLe writes the least significant byte first', () => {
  const bytes = new Uint8Array(8);
  storeLe(bytes, 0x0807060504030201n);
  assert.equal([...bytes], [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('ones(w) is 8 x w one bits', () => {
  for (let w = 1; w <= 8; w++) assert.is(ones(w), (1n << BigInt(8 * w)) - 1n);
});

test.run();

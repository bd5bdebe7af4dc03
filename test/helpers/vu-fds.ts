// SPDX-License-Identifier: MIT
// Leak checks for the vfio-user tiers: open fds (/proc/self/fd) and memfd mappings
// (/proc/self/maps lines naming a memfd: the server mmaps the client's guest memory). V8 maps
// and unmaps heap pages all the time, so only memfd-backed mappings are counted.

import { readdirSync, readFileSync } from 'node:fs';

export function countFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function countMemfdMaps(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes('/memfd:')).length;
}

export interface Baseline {
  fds: number;
  memfdMaps: number;
}

export function baseline(): Baseline {
  return { fds: countFds(), memfdMaps: countMemfdMaps() };
}

/** The fds and memfd maps now, for an `assert.equal(now(), base)` against baseline(). */
export function now(): Baseline {
  return baseline();
}

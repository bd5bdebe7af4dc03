// SPDX-License-Identifier: MIT
// The per-call timing loop the in-process benches share (plugins.mjs, dma-copy.mjs).

/** ns per call of `fn` over `n` calls. */
export function timeLoop(fn, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / n;
}

/** Calls fn for at least `ms` ms; then ns per call over one more batch (about ms/10). */
export function warmUp(fn, ms) {
  const end = performance.now() + ms;
  let chunk = 16;
  while (performance.now() < end) {
    const per = timeLoop(fn, chunk);
    if (per * chunk < ms * 1e5) chunk *= 2;
  }
  return timeLoop(fn, chunk);
}

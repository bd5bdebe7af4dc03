// SPDX-License-Identifier: MIT
// Builds a bench's C baseline into the shared bench cache. Two benches may run at once (or a
// bench next to a lab that copies the binary): each compiles to its own temporary name and
// renames it into place, which is atomic, so nobody ever runs or copies a half-written binary.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';

/** gcc -O2 `src` -> `out`, atomically; extra options (e.g. stdio) go to execFileSync */
export function buildC(src, out, options = {}) {
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', tmp, src], options);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
}

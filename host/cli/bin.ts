#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The `vfiobox` executable. All logic is in main.ts; this file only wires the process to it.

import { main } from './main.js';

// `vfiobox list | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));

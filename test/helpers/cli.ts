// SPDX-License-Identifier: MIT
// Running the vfiobox CLI in-process with captured output, for command tests.
import { type CliIo, main } from '../../host/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** main(argv) with stdout and stderr captured and no terminal. */
export async function runCli(argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    isTTY: false,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

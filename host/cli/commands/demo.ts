// SPDX-License-Identifier: MIT
// `vfiobox demo`: the main job in one command. Serves the bundled edu plugin over vfio-user (in
// its own worker, as `vfiobox serve` does) and drives it with the built-in client the way a
// guest driver would: ids, BAR0 registers, factorial by polling and by MSI, DMA through a
// memfd, reset. With --socket it walks a device someone else serves.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { eduWalk, type Step } from '../../demo/edu-walk.js';
import { resolvePlugin } from '../../serve/bundled.js';
import { DeviceSupervisor } from '../../serve/supervisor.js';
import { VfioUserClient } from '../../vfio-user/client.js';
import { engineOption, usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

const USAGE = `usage: vfiobox demo [--socket PATH] [--plugin P] [--engine v8|wasmtime]

Serves the bundled edu plugin on a temporary socket and drives it with the built-in vfio-user
client, step by step: VERSION, device info, config space, BAR0 ident/liveness/factorial,
factorial completion by MSI (an eventfd), DMA from and to guest memory shared as a memfd,
DEVICE_RESET. Needs no root, no VM and no hardware.

options:
  --socket PATH   walk the edu device already served on PATH (e.g. by vfiobox serve edu)
  --plugin P      serve this edu-compatible plugin instead of the bundled one
  --engine E      the engine that serves it: v8 (default) or wasmtime (docs/plugins.md)
  -h, --help      show this help
`;

function stepLine(s: Step): string {
  return `  ${s.ok ? 'ok  ' : 'FAIL'} ${s.name.padEnd(27)} ${s.detail}  (${s.ms.toFixed(1)} ms)\n`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'serve the bundled edu plugin and drive it with the built-in client',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        plugin: { type: 'string' },
        engine: { type: 'string' },
      },
    });
    if (positionals.length)
      throw usageError(`unexpected argument '${positionals[0]}'`, 'see vfiobox demo --help');
    if (values.socket && (values.plugin || values.engine)) {
      throw usageError(
        '--socket walks a device served elsewhere: --plugin and --engine do not apply',
        'see vfiobox demo --help',
      );
    }
    const engine = engineOption(values.engine, 'demo');
    let dir: string | undefined;
    let device: DeviceSupervisor | undefined;
    let socketPath = values.socket;
    try {
      if (!socketPath) {
        dir = mkdtempSync(join(tmpdir(), 'vfiobox-demo-'));
        socketPath = join(dir, 'edu.sock');
        const pluginPath = resolvePlugin(values.plugin ?? 'edu');
        io.stderr.write(`vfiobox demo: serving ${pluginPath} on ${socketPath}\n`);
        device = new DeviceSupervisor({ name: 'edu', pluginPath, socketPath, engine });
        device.on('event', (e) => {
          if (e.event === 'loaded') {
            io.stderr.write(
              `vfiobox demo: plugin sha256 ${String(e.sha256)}, engine ${String(e.engine)}\n`,
            );
          }
        });
        await device.start();
      }
      io.stdout.write(`edu over vfio-user at ${socketPath}\n`);
      const client = await VfioUserClient.connect(socketPath);
      let steps: Step[];
      try {
        steps = await eduWalk(client, (s) => io.stdout.write(stepLine(s)));
      } finally {
        client.close();
      }
      const failed = steps.filter((s) => !s.ok).length;
      const stats = await device?.stats();
      if (stats) {
        const reqs = Object.values(stats.requests).reduce((a, b) => a + b, 0);
        io.stdout.write(
          `server: ${reqs} requests, ${stats.device.irqs} irqs, ${stats.device.fences} fences\n`,
        );
      }
      io.stdout.write(`${steps.length - failed} passed, ${failed} failed\n`);
      return failed ? 1 : 0;
    } finally {
      await device?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  },
};

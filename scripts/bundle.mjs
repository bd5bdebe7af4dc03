// SPDX-License-Identifier: MIT
// Bundles the CLI (host/cli/bin.ts) into dist/vfiobox.mjs with esbuild. The native addon is not
// bundled: host/native/binding.ts finds build/Release/*.node relative to the package root.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['host/cli/bin.ts'],
  outfile: 'dist/vfiobox.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __vfioboxCreateRequire } from 'node:module'; const require = __vfioboxCreateRequire(import.meta.url);",
  },
});
chmodSync('dist/vfiobox.mjs', 0o755);

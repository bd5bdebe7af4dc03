// SPDX-License-Identifier: MIT
// Bundles the CLI (host/cli/bin.ts) into dist/vfiobox.mjs and the device worker
// (host/serve/device-worker.ts) into dist/device-worker.js with esbuild; the CLI finds the worker
// next to itself. Not bundled: the native addon (host/native/binding.ts finds build/Release/*.node
// relative to the package root) and jco, which loads its own wasm files from node_modules.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  external: ['@bytecodealliance/jco', '@bytecodealliance/componentize-js'],
  banner: {
    js: "import { createRequire as __vfioboxCreateRequire } from 'node:module'; const require = __vfioboxCreateRequire(import.meta.url);",
  },
};

await build({ ...common, entryPoints: ['host/cli/bin.ts'], outfile: 'dist/vfiobox.mjs' });
await build({
  ...common,
  entryPoints: ['host/serve/device-worker.ts'],
  outfile: 'dist/device-worker.js',
});
chmodSync('dist/vfiobox.mjs', 0o755);

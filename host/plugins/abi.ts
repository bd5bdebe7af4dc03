// SPDX-License-Identifier: MIT
// Which versions of the plugin ABI (`vfiobox:device@x.y.z`, wit/) this host runs, and the
// reading of a plugin's version from its component's import and export names (STYLE.md B5,
// wit/README.md "Versioning"). A plugin targets exactly one version: every name it imports or
// exports carries it, and a plugin mixing two is refused rather than guessed at.
//
// 0.1.1 and 0.1.2 only added items, so an older plugin runs against the latest host imports
// unchanged and needs no adapter in host/plugins/compat/ (compat/README.md): it simply never
// imports or exports what it lacks. 0.1.1 added interfaces (memory areas); 0.1.2 added functions
// to an existing one (`dma.map-window`, `dma.unmap-window`, with `types.window-error`) and no
// interface, so its interface lists are 0.1.1's.

import { PluginError } from '../errors.js';
import type { AbiVersion, World } from './engine.js';
import { isKnownWasiImport } from './wasi/index.js';

/** The range of `vfiobox:device` versions this host instantiates, inclusive. */
export const SUPPORTED_ABI = { min: '0.1.0', max: '0.1.2' } as const satisfies {
  min: AbiVersion;
  max: AbiVersion;
};

export const WIT_PACKAGE = 'vfiobox:device';

/** The interfaces of each supported version (wit/vfiobox-device/<ver>/). */
const INTERFACES: Readonly<
  Record<string, { imports: readonly string[]; exports: readonly string[] }>
> = {
  '0.1.0': {
    imports: ['types', 'irq', 'dma', 'log', 'clock', 'byte-stream', 'region'],
    exports: ['device'],
  },
  '0.1.1': {
    imports: ['types', 'irq', 'dma', 'log', 'clock', 'byte-stream', 'region', 'shared-memory'],
    exports: ['device', 'memory-areas'],
  },
  '0.1.2': {
    imports: ['types', 'irq', 'dma', 'log', 'clock', 'byte-stream', 'region', 'shared-memory'],
    exports: ['device', 'memory-areas'],
  },
};

export type { World } from './engine.js';

/**
 * The world a component's interface names belong to (wit/vfiobox-device/0.1.2/worlds.wit). A
 * component lists only the imports its code calls, so the exports decide: `memory-areas` is
 * emulated-device-with-memory whether or not it calls shared-memory.
 */
function worldOf(plugin: string, imports: readonly string[], exports: readonly string[]): World {
  const memory = exports.includes('memory-areas');
  if (imports.includes('region')) {
    if (memory || imports.includes('shared-memory')) {
      throw new PluginError(plugin, 'load', 'unsupported', 'no world has region and memory areas');
    }
    return 'passthrough-variant';
  }
  if (!memory && imports.includes('shared-memory')) {
    throw new PluginError(
      plugin,
      'load',
      'invalid',
      'imports shared-memory but exports no memory-areas (world emulated-device-with-memory)',
    );
  }
  return memory ? 'emulated-device-with-memory' : 'emulated-device';
}

export interface ComponentAbi {
  abi: AbiVersion;
  world: World;
  /** unversioned interface names imported, without the function-less `types` */
  imports: string[];
  /** unversioned interface names exported ('device') */
  exports: string[];
}

const NAME = /^vfiobox:device\/([a-z][a-z0-9-]*)@(\d+)\.(\d+)\.(\d+)$/;

export function parseVersion(version: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Semver order of two `x.y.z` versions (no pre-release tags: the ABI has none). */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a) ?? [0, 0, 0];
  const vb = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    const d = (va[i] ?? 0) - (vb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

interface Parsed {
  iface: string;
  version: AbiVersion;
}

function parseNames(plugin: string, what: 'imports' | 'exports', names: readonly string[]) {
  return names.map((name): Parsed => {
    const m = NAME.exec(name);
    if (!m) {
      throw new PluginError(
        plugin,
        'load',
        'unsupported',
        `${what} '${name}', which is not a versioned ${WIT_PACKAGE} interface (expected ` +
          `${WIT_PACKAGE}/<interface>@x.y.z; vfiobox provides no other capabilities)`,
      );
    }
    return { iface: m[1] as string, version: `${Number(m[2])}.${Number(m[3])}.${Number(m[4])}` };
  });
}

function describeVersions(parsed: readonly Parsed[]): string {
  const byVersion = new Map<string, string[]>();
  for (const p of parsed) byVersion.set(p.version, [...(byVersion.get(p.version) ?? []), p.iface]);
  return [...byVersion].map(([v, ifaces]) => `${v} (${ifaces.join(', ')})`).join(' and ');
}

/**
 * The ABI version, world and interfaces of a component, from its top-level names.
 * @throws PluginError kind 'unsupported' (a version outside SUPPORTED_ABI, a foreign or unknown
 *   interface) or 'invalid' (versions mixed, no `device` export)
 */
export function readAbi(
  plugin: string,
  names: { imports: readonly string[]; exports: readonly string[] },
): ComponentAbi {
  // WASI interfaces known to the deny-by-default shim (host/plugins/wasi) are the JS engine's
  // plumbing in componentize-js plugins, not capabilities; any other foreign import is refused.
  const imports = parseNames(
    plugin,
    'imports',
    names.imports.filter((n) => !isKnownWasiImport(n)),
  );
  const exports = parseNames(plugin, 'exports', names.exports);
  const all = [...imports, ...exports];
  const versions = new Set(all.map((p) => p.version));
  if (versions.size > 1) {
    throw new PluginError(
      plugin,
      'load',
      'invalid',
      `mixes ABI versions: ${describeVersions(all)}; a plugin targets exactly one vfiobox:device version`,
    );
  }
  const [abi] = versions as Set<AbiVersion>;
  if (abi === undefined || !exports.some((p) => p.iface === 'device')) {
    throw new PluginError(plugin, 'load', 'invalid', `exports no ${WIT_PACKAGE}/device interface`);
  }
  const known = INTERFACES[abi];
  const inRange =
    compareVersions(abi, SUPPORTED_ABI.min) >= 0 && compareVersions(abi, SUPPORTED_ABI.max) <= 0;
  if (!inRange || !known) {
    throw new PluginError(
      plugin,
      'load',
      'unsupported',
      `built against ${WIT_PACKAGE}@${abi}; this host supports ` +
        `${SUPPORTED_ABI.min}..${SUPPORTED_ABI.max}`,
    );
  }
  const unknown = [
    ...imports.filter((p) => !known.imports.includes(p.iface)).map((p) => `import ${p.iface}`),
    ...exports.filter((p) => !known.exports.includes(p.iface)).map((p) => `export ${p.iface}`),
  ];
  if (unknown.length) {
    throw new PluginError(
      plugin,
      'load',
      'unsupported',
      `${unknown.join(', ')}: not part of ${WIT_PACKAGE}@${abi}`,
    );
  }
  const capabilityImports = imports.map((p) => p.iface).filter((i) => i !== 'types');
  const exportNames = exports.map((p) => p.iface);
  return {
    abi,
    world: worldOf(plugin, capabilityImports, exportNames),
    imports: capabilityImports,
    exports: exportNames,
  };
}

// SPDX-License-Identifier: MIT
// `vfiobox inspect <plugin.wasm>`: what a plugin is and what it asks for, read from the file
// alone (no engine, no transpile): ABI version and world from the component's interface names,
// the manifest from its custom section or sidecar, size and sha256 for pinning in a policy.

import { parseArgs } from 'node:util';
import { ConfigError, PluginError } from '../../errors.js';
import { canonicalEntry, type IdEntry, PCI_ANY_ID } from '../../match.js';
import { readAbi, SUPPORTED_ABI } from '../../plugins/abi.js';
import { readPluginFile, sha256Hex } from '../../plugins/loader.js';
import {
  type Capabilities,
  type FoundManifest,
  type Manifest,
  readManifest,
} from '../../plugins/manifest.js';
import { readComponentNames } from '../../plugins/wasm-binary.js';
import { isBundledName, resolvePlugin } from '../../serve/bundled.js';
import { formatTable, hex4, hex6, usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

export interface InspectReport {
  file: string;
  sizeBytes: number;
  sha256: string;
  abi: string;
  supportedAbi: { min: string; max: string };
  world: string;
  /** full names, e.g. 'vfiobox:device/irq@0.1.0' */
  imports: string[];
  exports: string[];
  manifestSource: FoundManifest['source'];
  /** the sidecar file, when manifestSource is 'sidecar' */
  manifestPath?: string;
  manifest: Manifest;
}

/**
 * Reads what `vfiobox inspect` shows.
 * @throws ConfigError for a missing file, a file that is not a component, an unsupported or
 *   mixed ABI, or a malformed manifest
 */
export async function inspectPlugin(path: string): Promise<InspectReport> {
  const bytes = await readPluginFile(path);
  let names: ReturnType<typeof readComponentNames>;
  try {
    names = readComponentNames(bytes);
  } catch (err) {
    throw new ConfigError(
      'ERR_VFIOBOX_NOT_COMPONENT',
      `${path}: ${(err as Error).message}`,
      'plugins are WebAssembly components; see plugins/c/edu for how one is built',
    );
  }
  const found = readManifest(bytes, path);
  let abi: ReturnType<typeof readAbi>;
  try {
    abi = readAbi(found.manifest.name, names);
  } catch (err) {
    if (!(err instanceof PluginError)) throw err;
    throw new ConfigError(
      'ERR_VFIOBOX_PLUGIN_ABI',
      `${path}: ${err.message}`,
      `rebuild the plugin against wit/vfiobox-device/${SUPPORTED_ABI.max}`,
    );
  }
  return {
    file: path,
    sizeBytes: bytes.length,
    sha256: sha256Hex(bytes),
    abi: abi.abi,
    supportedAbi: { ...SUPPORTED_ABI },
    world: abi.world,
    imports: names.imports,
    exports: names.exports,
    manifestSource: found.source,
    ...(found.sidecarPath === undefined ? {} : { manifestPath: found.sidecarPath }),
    manifest: found.manifest,
  };
}

function idText(entry: IdEntry): string {
  const e = canonicalEntry(entry);
  const id = (v: number) => (v === PCI_ANY_ID ? '*' : hex4(v));
  const cls = e.classMask === 0 ? '' : ` class ${hex6(e.classCode)}/${hex6(e.classMask)}`;
  return `${id(e.vendor)}:${id(e.device)} sub ${id(e.subvendor)}:${id(e.subdevice)}${cls}`;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

function capabilityRows(c: Capabilities): string[][] {
  const vectors = c.irq.vectors === 'all' ? 'all' : c.irq.vectors.join(',') || 'none';
  const dma =
    typeof c.dma === 'string'
      ? c.dma
      : c.dma.map((w) => `${hex(w.iova)}+${hex(w.sizeBytes)} ${w.access}`).join(', ');
  const regions = c.regions.length
    ? c.regions.map((r) => `bar${r.bar} ${hex(r.offset)}+${hex(r.lengthBytes)}`).join(', ')
    : 'none';
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return [
    ['  irq', `vectors ${vectors}`],
    ['  dma', dma],
    ['  regions', regions],
    ['  log', yes(c.log)],
    ['  clock', yes(c.clock)],
    ['  byte-stream', yes(c.byteStream)],
    ['  shared-memory', yes(c.sharedMemory)],
  ];
}

/** The text form: one `key  value` line each, then the requested capabilities. */
export function formatInspect(r: InspectReport): string {
  const m = r.manifest;
  const source =
    r.manifestSource === 'none'
      ? 'none (the plugin requests no capabilities)'
      : r.manifestSource === 'sidecar'
        ? `sidecar ${r.manifestPath ?? ''}`
        : 'embedded (vfiobox:manifest section)';
  const short = (names: readonly string[]) =>
    names.map((n) => n.replace(/^vfiobox:device\/(.*)@.*$/, '$1')).join(', ') || 'none';
  const budgets = [
    m.budgets.accessUs === undefined ? undefined : `access ${m.budgets.accessUs} us`,
    m.budgets.memoryBytes === undefined ? undefined : `memory ${m.budgets.memoryBytes} bytes`,
  ].filter((b) => b !== undefined);
  const rows = [
    ['plugin', `${m.name} ${m.version}${m.description ? ` (${m.description})` : ''}`],
    ['file', r.file],
    ['size', `${r.sizeBytes} bytes`],
    ['sha256', r.sha256],
    ['abi', `vfiobox:device@${r.abi} (host supports ${r.supportedAbi.min}..${r.supportedAbi.max})`],
    ['world', r.world],
    ['exports', short(r.exports)],
    ['imports', short(r.imports)],
    ['manifest', source],
    ['ids', m.ids.length ? m.ids.map(idText).join('; ') : 'none'],
    ['budgets', budgets.join(', ') || 'none'],
    ['capabilities', 'requested:'],
    ...capabilityRows(m.capabilities),
  ];
  return formatTable(['FIELD', 'VALUE'], rows).split('\n').slice(1).join('\n');
}

/** JSON with bigints as 0x strings (addresses and sizes). */
export function inspectJson(r: InspectReport): string {
  return JSON.stringify(r, (_key, value) => (typeof value === 'bigint' ? hex(value) : value), 2);
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: "show a plugin's ABI version, world, interfaces, ids and requested capabilities",
  usage: `usage: vfiobox inspect <plugin.wasm | bundled name> [--json]

Reads a plugin component without running it: its ABI version (vfiobox:device@x.y.z, from the
interface names) and whether this host supports it, its world, imports and exports, size and
sha256 (for pinning in a policy), and its manifest (embedded vfiobox:manifest section or a
<name>.manifest.json beside it): ids and requested capabilities.

options:
  --json      print one JSON object instead of text
  -h, --help  show this help
`,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      options: { json: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: true,
    });
    const [path, ...extra] = positionals;
    if (path === undefined || extra.length > 0) {
      throw usageError(
        path === undefined ? 'inspect needs a plugin file' : `unexpected argument '${extra[0]}'`,
        'usage: vfiobox inspect <plugin.wasm | bundled name> [--json]',
      );
    }
    // a bundled name (edu, csum, ...) as `serve` takes it; a path is read as given, so that a
    // missing file is reported by the reader like any other unreadable one
    const report = await inspectPlugin(isBundledName(path) ? resolvePlugin(path) : path);
    io.stdout.write(values.json ? `${inspectJson(report)}\n` : formatInspect(report));
    return 0;
  },
};

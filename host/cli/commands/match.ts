// SPDX-License-Identifier: MIT
// `vfiobox match`: which plugin claims a device. Every plugin's manifest declares the ids it
// serves, with wildcards; the entry with the fewest wildcards wins, and a tie between two
// plugins is reported as ambiguous, never guessed (host/match.ts, shared with the native-core
// variant matcher).

import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../errors.js';
import { type IdTable, matchIdTable, type PciIds } from '../../match.js';
import { readManifest } from '../../plugins/manifest.js';
import { bundledPluginDir } from '../../serve/bundled.js';
import { getPciDevice, parseBdf } from '../../sysfs/pci.js';
import { hex4, hex6, usageError } from '../format.js';
import type { CliIo, Command } from '../main.js';

const USAGE = `usage: vfiobox match <bdf> [--plugins DIR]... [--json]
       vfiobox match --ids VVVV:DDDD[:SVVV:SDDD][/CCCCCC] [--plugins DIR]... [--json]

Picks the plugin whose manifest's id table matches the device most specifically: the entry
with the fewest wildcards wins (4 per wildcard id, 1 per wildcard class byte); a tie between
two plugins is reported as ambiguous and exits 1, as does no match.

options:
  --plugins DIR   look at every *.wasm in DIR (repeatable; default: the bundled plugins)
  --ids IDS       match these ids instead of a device's sysfs entry (hex)
  --json          print the result as JSON
  -h, --help      show this help
`;

/** Parses VVVV:DDDD[:SVVV:SDDD][/CCCCCC]. */
export function parseIds(text: string): PciIds {
  const m =
    /^([0-9a-f]{4}):([0-9a-f]{4})(?::([0-9a-f]{4}):([0-9a-f]{4}))?(?:\/([0-9a-f]{6}))?$/i.exec(
      text,
    );
  if (!m) {
    throw usageError(
      `--ids must look like 1234:11e8, 1234:11e8:1af4:1100 or 1234:11e8/00ff00 (got '${text}')`,
      USAGE.split('\n')[1] ?? '',
    );
  }
  const hex = (s: string | undefined, fallback: number) =>
    s === undefined ? fallback : Number.parseInt(s, 16);
  return {
    vendorId: hex(m[1], 0),
    deviceId: hex(m[2], 0),
    subsystemVendorId: hex(m[3], 0xffff),
    subsystemDeviceId: hex(m[4], 0xffff),
    classCode: hex(m[5], 0),
  };
}

/** The id tables of every plugin in `dirs`, named by file. */
export function pluginTables(dirs: readonly string[]): IdTable[] {
  const tables: IdTable[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => n.endsWith('.wasm'))
        .sort();
    } catch (err) {
      throw new ConfigError(
        'ERR_VFIOBOX_PLUGIN_DIR',
        `cannot read plugin directory ${dir}: ${(err as Error).message}`,
      );
    }
    for (const name of names) {
      const path = join(dir, name);
      const { manifest } = readManifest(readFileSync(path), path);
      if (manifest.ids.length) tables.push({ owner: path, entries: manifest.ids });
    }
  }
  return tables;
}

function idsText(ids: PciIds): string {
  return `${hex4(ids.vendorId)}:${hex4(ids.deviceId)} (subsystem ${hex4(ids.subsystemVendorId)}:${hex4(ids.subsystemDeviceId)}, class ${hex6(ids.classCode)})`;
}

export const matchCommand: Command = {
  name: 'match',
  summary: 'pick the plugin whose id table matches a device best',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        plugins: { type: 'string', multiple: true },
        ids: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    const [bdfArg, ...extra] = positionals;
    if (extra.length)
      throw usageError(`unexpected argument '${extra[0]}'`, 'see vfiobox match --help');
    if ((bdfArg === undefined) === (values.ids === undefined)) {
      throw usageError('give a <bdf> or --ids, not both', 'see vfiobox match --help');
    }
    const ids: PciIds = values.ids
      ? parseIds(values.ids)
      : await getPciDevice(parseBdf(bdfArg ?? ''), io.sysfs);
    const bundled = bundledPluginDir();
    const dirs = (values.plugins ?? (bundled ? [bundled] : [])).map((d) => resolve(d));
    if (dirs.length === 0) {
      throw new ConfigError(
        'ERR_VFIOBOX_NO_PLUGINS',
        'no plugin directory',
        'build the bundled plugins (bash scripts/build-plugins.sh) or pass --plugins DIR',
      );
    }
    const result = matchIdTable(ids, pluginTables(dirs));
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ ids, ...result }, null, 2)}\n`);
      return result.kind === 'match' ? 0 : 1;
    }
    io.stdout.write(`device ${idsText(ids)}\n`);
    if (result.kind === 'match') {
      io.stdout.write(`match  ${result.owner} (${result.wildcards} wildcards)\n`);
      return 0;
    }
    if (result.kind === 'none') {
      io.stdout.write(`no plugin in ${dirs.join(', ')} claims it\n`);
      return 1;
    }
    io.stdout.write(
      `ambiguous: ${result.candidates.length} entries tie at ${result.wildcards} wildcards:\n`,
    );
    for (const c of result.candidates) io.stdout.write(`  ${c.owner}\n`);
    return 1;
  },
};

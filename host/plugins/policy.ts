// SPDX-License-Identifier: MIT
// The user's policy file: what each plugin may actually use. A policy entry narrows what the
// plugin's manifest requests and can never widen it (grants.ts intersects the two), and may pin
// the plugin to one build by sha256, which is what makes a name-keyed entry safe: a different
// file calling itself "edu" is refused instead of inheriting edu's grants.
//
//   {
//     "unlisted": "requested",              // plugins without an entry: "requested" | "deny"
//     "plugins": {
//       "edu": {
//         "sha256": "22f7fc1f...",           // optional pin (64 hex digits)
//         "capabilities": { "dma": [{ "iova": "0x100000", "sizeBytes": "0x10000" }] },
//         "logLinesPerSecond": 20
//       }
//     }
//   }
//
// `capabilities` has the manifest's shape (manifest.ts); each field given replaces the
// manifest's request by its intersection with the policy's; fields not given keep the request.

import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { type Capabilities, parseCapabilities } from './manifest.js';
import { Fields, join, parseJson } from './schema.js';

export const POLICY_ERROR = 'ERR_VFIOBOX_POLICY';

export interface PluginPolicy {
  /** lowercase hex sha256 the plugin file must have */
  sha256?: string;
  capabilities: Partial<Capabilities>;
  logLinesPerSecond?: number;
}

export interface Policy {
  /** names the policy in messages (its path) */
  source: string;
  /** what a plugin without an entry gets: what it requests, or nothing */
  unlisted: 'requested' | 'deny';
  plugins: Record<string, PluginPolicy>;
}

function parseEntry(f: Fields, value: unknown, path: string): PluginPolicy {
  const o = f.object(value, path, ['sha256', 'capabilities', 'logLinesPerSecond']);
  const entry: PluginPolicy = {
    capabilities:
      o.capabilities === undefined
        ? {}
        : parseCapabilities(f, o.capabilities, join(path, 'capabilities')),
  };
  if (o.sha256 !== undefined) {
    entry.sha256 = f
      .string(o.sha256, join(path, 'sha256'), /^[0-9a-fA-F]{64}$/, 'a sha256 of 64 hex digits')
      .toLowerCase();
  }
  if (o.logLinesPerSecond !== undefined) {
    entry.logLinesPerSecond = f.integer(
      o.logLinesPerSecond,
      join(path, 'logLinesPerSecond'),
      0,
      1e6,
    );
  }
  return entry;
}

/**
 * Validates a parsed policy document.
 * @throws ConfigError naming the field path, what was expected and what was found
 */
export function parsePolicy(json: unknown, source: string): Policy {
  const f = new Fields(source, POLICY_ERROR, 'see host/plugins/policy.ts for the policy format');
  const o = f.object(json, '', ['unlisted', 'plugins']);
  const unlisted = f.string(
    o.unlisted ?? 'requested',
    'unlisted',
    /^(requested|deny)$/,
    '"requested" or "deny"',
  );
  const plugins: Record<string, PluginPolicy> = {};
  if (o.plugins !== undefined) {
    const entries = f.object(o.plugins, 'plugins', Object.keys(o.plugins ?? {}));
    for (const [name, value] of Object.entries(entries)) {
      plugins[name] = parseEntry(f, value, join('plugins', name));
    }
  }
  return { source, unlisted: unlisted as Policy['unlisted'], plugins };
}

/** Reads and validates a policy file. @throws ConfigError (missing file, bad JSON, bad field) */
export async function loadPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      POLICY_ERROR,
      `policy file ${path}: ${code === 'ENOENT' ? 'not found' : (err as Error).message}`,
    );
  }
  return parsePolicy(parseJson(text, path, POLICY_ERROR), path);
}

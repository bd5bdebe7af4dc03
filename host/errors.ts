// SPDX-License-Identifier: MIT
// Every error class vfiobox throws is defined here, and only here.
// Field names follow Node's SystemError (code, errno); `op` is the kernel or protocol name of the
// failed operation verbatim (VFIO_IOMMU_MAP_DMA, vfio-user:DMA_MAP) so that it greps across the
// kernel, QEMU and this code base. `errno` is the positive Linux value.

import { constants } from 'node:os';

const errnoNames: ReadonlyMap<number, string> = new Map(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** The name for a positive errno value (`16` → `'EBUSY'`), or `'E<n>'` if unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The errno value for a name (`'EBUSY'` → 16), or undefined. */
export function errnoValue(name: string): number | undefined {
  return (constants.errno as Record<string, number | undefined>)[name];
}

function formatDetail(detail: Record<string, unknown> | undefined): string {
  if (!detail) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(detail)) {
    if (value === undefined) continue;
    const shown =
      typeof value === 'bigint'
        ? `0x${value.toString(16)}`
        : typeof value === 'number' && /iova|offset|size|addr|flags/i.test(key)
          ? `0x${value.toString(16)}`
          : String(value);
    parts.push(`${key}=${shown}`);
  }
  return parts.length ? ` ${parts.join(' ')}` : '';
}

export interface VfioErrorInit {
  op: string;
  errno: number;
  /** 'EBUSY' style, or an 'ERR_VFIO_*' code for conditions the kernel does not name */
  code?: string;
  /** human text for the cause; defaults to the errno's description */
  message?: string;
  detail?: Record<string, unknown>;
}

/**
 * A failed VFIO/IOMMU/sysfs operation. Message format is fixed:
 * `VFIO_IOMMU_MAP_DMA: Device or resource busy (EBUSY) iova=0x10000 size=0x1000`.
 * Branch on `code`, never on the text.
 */
export class VfioError extends Error {
  override readonly name = 'VfioError';
  readonly op: string;
  readonly errno: number;
  readonly code: string;
  readonly detail: Record<string, unknown>;

  constructor(init: VfioErrorInit) {
    const code = init.code ?? errnoName(init.errno);
    const text = init.message ?? `errno ${init.errno}`;
    super(`${init.op}: ${text} (${code})${formatDetail(init.detail)}`);
    this.op = init.op;
    this.errno = init.errno;
    this.code = code;
    this.detail = init.detail ?? {};
  }
}

/** The vfio-user peer broke the protocol; `errno` is what we reply with. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly op: string;
  readonly errno: number;
  readonly code: string;
  constructor(op: string, errno: number, message: string) {
    super(`${op}: ${message} (${errnoName(errno)})`);
    this.op = op;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

export type PluginErrorKind =
  | 'trap'
  | 'timeout'
  | 'unsupported'
  | 'returned'
  | 'denied'
  | 'invalid';

/** A plugin misbehaved or refused; `kind` says how. */
export class PluginError extends Error {
  override readonly name = 'PluginError';
  readonly plugin: string;
  readonly export: string;
  readonly kind: PluginErrorKind;
  readonly errno: number;
  constructor(
    plugin: string,
    exportName: string,
    kind: PluginErrorKind,
    message: string,
    errno = 5,
  ) {
    super(`${plugin}:${exportName}: ${kind}: ${message}`);
    this.plugin = plugin;
    this.export = exportName;
    this.kind = kind;
    this.errno = errno;
  }
}

/** Bad user input (CLI arguments, policy files, manifests). `hint` says how to fix it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: string;
  readonly hint: string | undefined;
  constructor(code: string, message: string, hint?: string) {
    super(message);
    this.code = code;
    this.hint = hint;
  }
}

// SPDX-License-Identifier: MIT
// vfiobox's errors across the comlink control plane. comlink rebuilds a thrown error on the other
// side as a plain `Error` with the original's name, message and stack copied on, so a VfioError
// thrown in a device worker (a socket path that cannot be bound, a plugin refused) would reach
// the CLI as an unknown error and print as an internal bug. This wraps comlink's "throw" handler:
// our error classes travel as their fields and come back as real instances (same message and
// stack); everything else is left to comlink's own handler.

import { type TransferHandler, transferHandlers } from 'comlink';
import {
  ConfigError,
  PluginError,
  type PluginErrorKind,
  ProtocolError,
  VfioError,
} from '../errors.js';

type Wire =
  | { kind: 'VfioError'; op: string; errno: number; code: string; detail: Record<string, unknown> }
  | { kind: 'ProtocolError'; op: string; errno: number }
  | {
      kind: 'PluginError';
      plugin: string;
      export: string;
      pluginKind: PluginErrorKind;
      errno: number;
    }
  | { kind: 'ConfigError'; code: string; hint: string | undefined };

interface Serialized {
  vfiobox: Wire;
  message: string;
  stack: string | undefined;
}

const MARK = 'vfiobox' as const;

function toWire(err: unknown): Wire | undefined {
  if (err instanceof VfioError) {
    return { kind: 'VfioError', op: err.op, errno: err.errno, code: err.code, detail: err.detail };
  }
  if (err instanceof ProtocolError) return { kind: 'ProtocolError', op: err.op, errno: err.errno };
  if (err instanceof PluginError) {
    return {
      kind: 'PluginError',
      plugin: err.plugin,
      export: err.export,
      pluginKind: err.kind,
      errno: err.errno,
    };
  }
  if (err instanceof ConfigError) return { kind: 'ConfigError', code: err.code, hint: err.hint };
  return undefined;
}

/** A real instance of the error `s` describes, carrying the original message and stack. */
export function rebuildError(s: Serialized): Error {
  const w = s.vfiobox;
  let err: Error;
  switch (w.kind) {
    case 'VfioError':
      err = new VfioError({ op: w.op, errno: w.errno, code: w.code, detail: w.detail });
      break;
    case 'ProtocolError':
      err = new ProtocolError(w.op, w.errno, '');
      break;
    case 'PluginError':
      err = new PluginError(w.plugin, w.export, w.pluginKind, '', w.errno);
      break;
    case 'ConfigError':
      err = new ConfigError(w.code, '', w.hint);
      break;
  }
  err.message = s.message;
  if (s.stack !== undefined) err.stack = s.stack;
  return err;
}

function isSerialized(v: unknown): v is Serialized {
  return typeof v === 'object' && v !== null && MARK in v;
}

let installed = false;

/** Installs the wrapper once per thread; both sides of a comlink channel must call it. */
export function installErrorTransfer(): void {
  if (installed) return;
  const base = transferHandlers.get('throw');
  if (base === undefined) return; // a comlink without a throw handler: nothing to wrap
  const handler: TransferHandler<unknown, unknown> = {
    canHandle: (value): value is unknown => base.canHandle(value),
    serialize(value) {
      // comlink hands the handler `{ value: <thrown>, [throwMarker]: 0 }`.
      const thrown = (value as { value?: unknown }).value;
      const wire = toWire(thrown);
      if (wire === undefined || !(thrown instanceof Error)) return base.serialize(value);
      const s: Serialized = { vfiobox: wire, message: thrown.message, stack: thrown.stack };
      return [s, []];
    },
    deserialize(serialized) {
      if (isSerialized(serialized)) throw rebuildError(serialized);
      return base.deserialize(serialized);
    },
  };
  transferHandlers.set('throw', handler);
  installed = true;
}

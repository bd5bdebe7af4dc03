// SPDX-License-Identifier: MIT
// The error boundary every engine's instance wrapper shares (engine.ts): the argument and world
// checks of instantiate, which WIT error enum each export's `err` uses, and the life of an
// instance (live, poisoned by a fault, disposed) with the PluginError a call on a dead one
// throws. One module, so that the V8 and wasmtime engines refuse the same inputs and report
// the same faults in the same words.

import { PluginError } from '../../errors.js';
import type { HostImports, InstanceLimits, World } from '../engine.js';
import { WitError } from '../engine.js';
import { isWitErrorCase, type WitErrorEnum } from '../errno-map.js';

/** The WIT error enum each export's `err` uses (load-state's is a string). */
const EXPORT_ERRORS: Readonly<Record<string, WitErrorEnum | 'string'>> = {
  'region-read': 'access-error',
  'region-write': 'access-error',
  'load-state': 'string',
};

/**
 * The WitError for an export's returned `err(payload)`, or undefined when the export has no
 * error case or `payload` is none of its cases: then the call is a fault, not a returned error.
 */
export function exportWitError(exportName: string, payload: unknown): WitError | undefined {
  const errors = EXPORT_ERRORS[exportName];
  if (errors === undefined || typeof payload !== 'string') return undefined;
  if (errors === 'string' || isWitErrorCase(errors, payload)) return new WitError(payload);
  return undefined;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * What CompiledPlugin.instantiate refuses before the engine does anything: a memory cap that is
 * not a byte count (RangeError, a host bug) and a world whose import the host did not give
 * (PluginError denied).
 */
export function checkInstantiate(
  plugin: string,
  world: World,
  host: HostImports,
  limits: InstanceLimits,
): void {
  if (!Number.isSafeInteger(limits.memoryBytes) || limits.memoryBytes < 0) {
    throw new RangeError(`limits.memoryBytes: expected a byte count, got ${limits.memoryBytes}`);
  }
  if (world === 'passthrough-variant' && !host.region) {
    throw new PluginError(
      plugin,
      'instantiate',
      'denied',
      'a passthrough-variant plugin needs the region capability and the host gave none',
    );
  }
  if (world === 'emulated-device-with-memory' && !host.sharedMemory) {
    throw new PluginError(
      plugin,
      'instantiate',
      'denied',
      'an emulated-device-with-memory plugin needs the shared-memory import and the host gave none',
    );
  }
}

/** A fault's message; a plugin that traps with its memory full most likely ran out of it. */
export function faultMessage(text: string, memoryBytes: number, capBytes: number): string {
  const capped = memoryBytes >= capBytes && capBytes > 0;
  return capped ? `${text} (linear memory at its cap of ${capBytes} bytes)` : text;
}

const LIVE = 0;
const POISONED = 1;
const DISPOSED = 2;

/**
 * Whether an instance may still be called. A fault poisons it (the caller must discard it and
 * instantiate a fresh one, engine.ts); dispose() ends it. Either way later calls throw dead().
 */
export class InstanceLife {
  #state = LIVE;
  #poisonedBy = '';

  constructor(readonly plugin: string) {}

  get live(): boolean {
    return this.#state === LIVE;
  }

  get disposed(): boolean {
    return this.#state === DISPOSED;
  }

  /** `by`: the fault's message, or '' for a failed instantiation. */
  poison(by: string): void {
    if (this.#state === DISPOSED) return;
    this.#state = POISONED;
    this.#poisonedBy = by;
  }

  dispose(): void {
    this.#state = DISPOSED;
  }

  /** What a call on a poisoned or disposed instance throws instead of entering the plugin. */
  dead(exportName: string): PluginError {
    if (this.#state === DISPOSED) {
      return new PluginError(this.plugin, exportName, 'invalid', 'the instance was disposed');
    }
    return new PluginError(
      this.plugin,
      exportName,
      'trap',
      `the instance is poisoned by an earlier fault (${this.#poisonedBy || 'at instantiation'})`,
    );
  }
}

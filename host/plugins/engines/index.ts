// SPDX-License-Identifier: MIT
// Choosing an engine by name (`--engine v8|wasmtime`, DeviceSpec.engine): the one place that
// knows every engine, so the CLI, the serve path and the loader do not import engines directly.
// docs/plugins.md "Choosing an engine" says which plugin runs where.

import type { Engine, EngineName } from '../engine.js';
import { v8Engine } from './v8.js';
import { wasmtimeEngine } from './wasmtime.js';

/** Every engine, in the order help texts list them; the first is the default. */
export const ENGINE_NAMES: readonly EngineName[] = ['v8', 'wasmtime'];

export const DEFAULT_ENGINE: EngineName = 'v8';

const ENGINES: Readonly<Record<EngineName, Engine>> = { v8: v8Engine, wasmtime: wasmtimeEngine };

/**
 * Whether an engine stops a call that overruns InstanceLimits.budgetMs on its own thread (a
 * trap). V8 cannot: there only the worker watchdog can stop it, by terminating the worker.
 */
export function interruptsCalls(name: EngineName): boolean {
  return name === 'wasmtime';
}

export function isEngineName(value: string): value is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(value);
}

/** The engine called `name` ('v8' or 'wasmtime'). @throws RangeError for any other name */
export function engineByName(name: EngineName): Engine {
  const engine = ENGINES[name];
  if (!engine) {
    throw new RangeError(`engine: expected one of ${ENGINE_NAMES.join(', ')}, got '${name}'`);
  }
  return engine;
}

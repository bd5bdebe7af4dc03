// SPDX-License-Identifier: MIT
// The device-export methods of a PluginInstance (engine.ts), written once for every engine:
// each is one state check, one call of the engine's export and one error boundary, with no
// closure and no allocation of its own on the success path (the trapped-access path). An
// engine says how to reach its live exports (`live`: throws for a poisoned or disposed
// instance) and what a failed call becomes (`fail`: a WitError for a returned err, else a
// PluginError that poisons the instance).

import type { AccessWidth, ConfigWidth, DeviceDescription } from '../engine.js';

/** The device export as an engine calls it (jco's glue, the native wasmtime instance). */
export interface DeviceCalls {
  describe(): DeviceDescription;
  configRead(offset: number, width: number): number;
  configWrite(offset: number, width: number, value: number): void;
  regionRead(bar: number, offset: bigint, width: number): bigint;
  regionWrite(bar: number, offset: bigint, width: number, value: bigint): void;
  reset(): void;
  timer(id: number): void;
  saveState(): Uint8Array;
  loadState(state: Uint8Array): void;
  streamReady(): void;
}

export abstract class GuardedInstance<D extends DeviceCalls> {
  /** the live exports, or throws the PluginError of a poisoned or disposed instance */
  protected abstract live(exportName: string): D;
  /** what a call that threw `err` becomes (and poisons the instance when it is a fault) */
  protected abstract fail(exportName: string, err: unknown): Error;

  describe(): DeviceDescription {
    const d = this.live('describe');
    try {
      return d.describe();
    } catch (err) {
      throw this.fail('describe', err);
    }
  }

  configRead(offset: number, width: ConfigWidth): number {
    const d = this.live('config-read');
    try {
      return d.configRead(offset, width);
    } catch (err) {
      throw this.fail('config-read', err);
    }
  }

  configWrite(offset: number, width: ConfigWidth, value: number): void {
    const d = this.live('config-write');
    try {
      d.configWrite(offset, width, value);
    } catch (err) {
      throw this.fail('config-write', err);
    }
  }

  regionRead(bar: number, offset: bigint, width: AccessWidth): bigint {
    const d = this.live('region-read');
    try {
      return d.regionRead(bar, offset, width);
    } catch (err) {
      throw this.fail('region-read', err);
    }
  }

  regionWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void {
    const d = this.live('region-write');
    try {
      d.regionWrite(bar, offset, width, value);
    } catch (err) {
      throw this.fail('region-write', err);
    }
  }

  reset(): void {
    const d = this.live('reset');
    try {
      d.reset();
    } catch (err) {
      throw this.fail('reset', err);
    }
  }

  timer(id: number): void {
    const d = this.live('timer');
    try {
      d.timer(id);
    } catch (err) {
      throw this.fail('timer', err);
    }
  }

  saveState(): Uint8Array {
    const d = this.live('save-state');
    try {
      return d.saveState();
    } catch (err) {
      throw this.fail('save-state', err);
    }
  }

  loadState(state: Uint8Array): void {
    const d = this.live('load-state');
    try {
      d.loadState(state);
    } catch (err) {
      throw this.fail('load-state', err);
    }
  }

  streamReady(): void {
    const d = this.live('stream-ready');
    try {
      d.streamReady();
    } catch (err) {
      throw this.fail('stream-ready', err);
    }
  }
}

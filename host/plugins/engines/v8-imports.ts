// SPDX-License-Identifier: MIT
// The import object the V8 engine hands to jco's glue: the host's (grant-checked) imports, each
// wrapped so that a WitError with a case of the function's WIT error enum becomes the
// `{ payload }` the glue turns into `err(case)`, and anything else is recorded as a host fault
// (which traps the call and poisons the instance, engine.ts). Written out per function, with no
// rest parameters, so the success path is a plain call that allocates nothing.

import type { AccessWidth, HostImports, WindowErrorCode } from '../engine.js';
import { WitError } from '../engine.js';
import { isWitErrorCase, type WitErrorEnum } from '../errno-map.js';
import { wasiImports } from '../wasi/index.js';

/** Where a wrapper reports a host import that failed with something other than a WIT error. */
export interface HostFaultSink {
  noteHostFault(what: string, err: unknown): void;
}

/** Thrown into the glue when a host import failed in a way that is not a WIT error. */
const HOST_FAULT = new Error('vfiobox: a host import failed; the instance is poisoned');

/**
 * What dma.map-window and dma.unmap-window (0.1.2) throw into the glue: err(unsupported), in the
 * `{ payload }` shape hostError gives a WitError. jco's glue lowers a `result<_, E>` import by
 * calling it in a try and taking an own `payload` of what it throws as `err(payload)`
 * (getErrorPayload in jco 1.12's intrinsics). V8 cannot map guest memory over a plugin's linear
 * memory (only the wasmtime engine does, natively), so these never succeed here and check no
 * grant; the plugin falls back to dma.read/dma.write. Frozen: one object serves every call.
 */
const WINDOW_UNSUPPORTED = Object.freeze({ payload: 'unsupported' satisfies WindowErrorCode });

/**
 * What a host import's wrapper throws into the glue for `err`: the `{ payload }` jco's glue turns
 * into `err(case)` when `err` is a WitError with a case of the import's error enum, else the
 * HOST_FAULT sentinel after recording the fault (a host bug, or a WitError on a function whose
 * WIT result has no error case). Called only on failure, so the wrappers' success path is a
 * plain call with no allocation.
 */
function hostError(
  inst: HostFaultSink,
  what: string,
  errors: WitErrorEnum | undefined,
  err: unknown,
) {
  if (errors && err instanceof WitError && isWitErrorCase(errors, err.code)) {
    return { payload: err.code };
  }
  return hostFault(inst, what, err);
}

/** Records a host fault on `inst` and returns what to throw into the wasm caller (a trap). */
export function hostFault(inst: HostFaultSink, what: string, err: unknown): Error {
  inst.noteHostFault(what, err);
  return HOST_FAULT;
}

type LogLevelArg = Parameters<HostImports['log']['log']>[0];

/** The glue's import object (keys without versions, as jco 1.12 asks for them). */
export function bindImports(host: HostImports, inst: HostFaultSink): Record<string, unknown> {
  const { irq, dma, log: hostLog, clock, byteStream, region } = host;
  const imports: Record<string, unknown> = {
    'vfiobox:device/irq': {
      raise(vector: number) {
        try {
          irq.raise(vector);
        } catch (err) {
          throw hostError(inst, 'irq.raise', 'irq-error', err);
        }
      },
      lower(vector: number) {
        try {
          irq.lower(vector);
        } catch (err) {
          throw hostError(inst, 'irq.lower', 'irq-error', err);
        }
      },
      isMasked(vector: number) {
        try {
          return irq.isMasked(vector);
        } catch (err) {
          throw hostError(inst, 'irq.is-masked', undefined, err);
        }
      },
    },
    'vfiobox:device/dma': {
      read(iova: bigint, len: number) {
        try {
          return dma.read(iova, len);
        } catch (err) {
          throw hostError(inst, 'dma.read', 'dma-error', err);
        }
      },
      write(iova: bigint, data: Uint8Array) {
        try {
          dma.write(iova, data);
        } catch (err) {
          throw hostError(inst, 'dma.write', 'dma-error', err);
        }
      },
      // (iova: bigint, len: number, at: number, writable: boolean); the glue only destructures
      // these for a 0.1.2 plugin that imports them, so they cost older plugins nothing.
      mapWindow() {
        throw WINDOW_UNSUPPORTED;
      },
      // (at: number)
      unmapWindow() {
        throw WINDOW_UNSUPPORTED;
      },
    },
    'vfiobox:device/log': {
      log(level: LogLevelArg, message: string) {
        try {
          hostLog.log(level, message);
        } catch (err) {
          throw hostError(inst, 'log.log', undefined, err);
        }
      },
    },
    'vfiobox:device/clock': {
      nowNs() {
        try {
          return clock.nowNs();
        } catch (err) {
          throw hostError(inst, 'clock.now-ns', undefined, err);
        }
      },
      setTimer(id: number, delayNs: bigint) {
        try {
          clock.setTimer(id, delayNs);
        } catch (err) {
          throw hostError(inst, 'clock.set-timer', undefined, err);
        }
      },
      cancelTimer(id: number) {
        try {
          clock.cancelTimer(id);
        } catch (err) {
          throw hostError(inst, 'clock.cancel-timer', undefined, err);
        }
      },
    },
    'vfiobox:device/byte-stream': {
      write(data: Uint8Array) {
        try {
          return byteStream.write(data);
        } catch (err) {
          throw hostError(inst, 'byte-stream.write', undefined, err);
        }
      },
      read(maxLen: number) {
        try {
          return byteStream.read(maxLen);
        } catch (err) {
          throw hostError(inst, 'byte-stream.read', undefined, err);
        }
      },
    },
  };
  if (region) imports['vfiobox:device/region'] = bindRegion(region, inst);
  if (host.sharedMemory) {
    imports['vfiobox:device/shared-memory'] = bindSharedMemory(host.sharedMemory, inst);
  }
  // WASI for componentize-js plugins (unused by C plugins): stdout/stderr go to the granted log
  // (a line the grant refuses is dropped); time comes from the device clock so the harness stays
  // deterministic, falling back to the process clock when the clock grant is missing.
  Object.assign(
    imports,
    wasiImports({
      log(level, message) {
        try {
          hostLog.log(level, message);
        } catch (err) {
          if (!(err instanceof WitError)) throw err;
        }
      },
      monotonicNs() {
        try {
          return clock.nowNs();
        } catch {
          return process.hrtime.bigint();
        }
      },
    }),
  );
  return imports;
}

function bindRegion(region: NonNullable<HostImports['region']>, inst: HostFaultSink) {
  return {
    read(bar: number, offset: bigint, width: AccessWidth) {
      try {
        return region.read(bar, offset, width);
      } catch (err) {
        throw hostError(inst, 'region.read', 'access-error', err);
      }
    },
    write(bar: number, offset: bigint, width: AccessWidth, value: bigint) {
      try {
        region.write(bar, offset, width, value);
      } catch (err) {
        throw hostError(inst, 'region.write', 'access-error', err);
      }
    },
  };
}

function bindSharedMemory(memory: NonNullable<HostImports['sharedMemory']>, inst: HostFaultSink) {
  return {
    read(bar: number, offset: bigint, len: number) {
      try {
        return memory.read(bar, offset, len);
      } catch (err) {
        throw hostError(inst, 'shared-memory.read', 'access-error', err);
      }
    },
    write(bar: number, offset: bigint, data: Uint8Array) {
      try {
        memory.write(bar, offset, data);
      } catch (err) {
        throw hostError(inst, 'shared-memory.write', 'access-error', err);
      }
    },
  };
}

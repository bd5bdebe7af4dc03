// SPDX-License-Identifier: MIT
// The single table between the WIT error enums (wit/vfiobox-device/0.1.2/types.wit) and Linux
// errno values (STYLE.md B3). Each case's errno is the one its doc comment in types.wit names;
// the errno is what the VMM sees in the vfio-user reply. Nothing else in the host maps these.

import { errnoValue } from '../errors.js';
import type { AccessErrorCode, DmaErrorCode, IrqErrorCode, WindowErrorCode } from './engine.js';

/** Positive Linux errno by name; these exist on every Linux build of Node. */
function errno(name: string): number {
  const value = errnoValue(name);
  if (value === undefined) throw new RangeError(`errno ${name} is unknown to this platform`);
  return value;
}

/** `types.access-error` */
export const ACCESS_ERRNO: Readonly<Record<AccessErrorCode, number>> = {
  'invalid-width': errno('EINVAL'),
  'out-of-range': errno('EINVAL'),
  'not-granted': errno('EPERM'),
  unsupported: errno('ENOTSUP'),
  'device-error': errno('EIO'),
};

/** `types.dma-error` */
export const DMA_ERRNO: Readonly<Record<DmaErrorCode, number>> = {
  'not-mapped': errno('EFAULT'),
  'not-granted': errno('EPERM'),
  'access-denied': errno('EACCES'),
  'too-large': errno('E2BIG'),
};

/** `types.window-error` (0.1.2): `dma.map-window`, `dma.unmap-window` */
export const WINDOW_ERRNO: Readonly<Record<WindowErrorCode, number>> = {
  'not-mapped': errno('EFAULT'),
  'not-granted': errno('EPERM'),
  'access-denied': errno('EACCES'),
  'invalid-range': errno('EINVAL'),
  busy: errno('EBUSY'),
  'too-many': errno('ENOSPC'),
  unsupported: errno('ENOTSUP'),
};

/** `types.irq-error` */
export const IRQ_ERRNO: Readonly<Record<IrqErrorCode, number>> = {
  'invalid-vector': errno('EINVAL'),
  'not-granted': errno('EPERM'),
};

export type WitErrorEnum = 'access-error' | 'dma-error' | 'window-error' | 'irq-error';

const TABLES: Readonly<Record<WitErrorEnum, Readonly<Record<string, number>>>> = {
  'access-error': ACCESS_ERRNO,
  'dma-error': DMA_ERRNO,
  'window-error': WINDOW_ERRNO,
  'irq-error': IRQ_ERRNO,
};

/** The cases of an enum, in WIT order. */
export function witErrorCases(enumName: WitErrorEnum): readonly string[] {
  return Object.keys(TABLES[enumName]);
}

/** Whether `code` is a case of `enumName`. */
export function isWitErrorCase(enumName: WitErrorEnum, code: string): boolean {
  return Object.hasOwn(TABLES[enumName], code);
}

/** The errno for a case; EIO for anything that is not one (a plugin returned garbage). */
export function errnoForWitError(enumName: WitErrorEnum, code: string): number {
  return TABLES[enumName][code] ?? errno('EIO');
}

/**
 * The case for an errno, for host code that gets errnos (the native DMA table) and has to
 * answer a plugin: the first case in WIT order with that errno, else the fallback.
 */
export function witErrorForErrno<E extends WitErrorEnum>(
  enumName: E,
  value: number,
  fallback: string,
): string {
  for (const [code, e] of Object.entries(TABLES[enumName])) if (e === value) return code;
  return fallback;
}

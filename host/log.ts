// SPDX-License-Identifier: MIT
// Debug logging for library code, which never calls console.*. Each area gets a
// util.debuglog section named `vfio:<area>`, so `NODE_DEBUG=vfio:sysfs` (or `vfio:*`) turns it on
// and a disabled logger costs one function call.

import { debuglog } from 'node:util';

/** A printf-style (`%s %d %j %o`) logger that writes to stderr only when its section is enabled. */
export interface Logger {
  (format: string, ...args: unknown[]): void;
  /** true when NODE_DEBUG selects this section; check it before building costly arguments */
  readonly enabled: boolean;
}

/** The logger for one area: `createLogger('sysfs')` logs under the section `vfio:sysfs`. */
export function createLogger(area: string): Logger {
  return debuglog(`vfio:${area}`);
}

// SPDX-License-Identifier: MIT
// vfio-user command numbers and their names (for errors and logs).

/** [SPEC "Commands"], [LVU enum vfio_user_command]. 14 (an old DIRTY_PAGES) is unused. */
export const Command = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;
export type CommandName = keyof typeof Command;

const commandNames = new Map<number, string>(Object.entries(Command).map(([k, v]) => [v, k]));

/** `'DMA_MAP'` for 2; `'CMD_<n>'` for a number the spec does not define. */
export function commandName(command: number): string {
  return commandNames.get(command) ?? `CMD_${command}`;
}

/** The ProtocolError op for a command: `vfio-user:DMA_MAP`. */
export function opName(command: number): string {
  return `vfio-user:${commandName(command)}`;
}

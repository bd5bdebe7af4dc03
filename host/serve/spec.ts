// SPDX-License-Identifier: MIT
// What `vfiobox serve` runs per device, and what it reports. Plain data only: these records
// cross the worker boundary (structured clone) through the comlink control plane.

import type { IrqSnapshot } from '../device/interrupts.js';
import type { DeviceStats } from '../device/types.js';
import type { EngineName } from '../plugins/engine.js';

/** Default wall-clock budget of one plugin call (--budget-ms may change it). */
export const DEFAULT_BUDGET_MS = 100;

/** One served device: a plugin instance behind one vfio-user socket. */
export interface DeviceSpec {
  /** shown in logs and stats: 'edu', 'edu#2', ... */
  name: string;
  pluginPath: string;
  socketPath: string;
  /** user policy file (grants, sha256 pins); absent: grant what the manifest asks */
  policyPath?: string | undefined;
  /** refuse the plugin unless its sha256 is this (hex) */
  expectSha256?: string | undefined;
  /** 'unix:PATH' exposes the device's byte stream as a UNIX socket server; absent: none */
  stream?: string | undefined;
  /**
   * the engine that runs the plugin (default v8); kept by the supervisor, so a restarted
   * worker and a hot reload use the same one
   */
  engine?: EngineName | undefined;
  /**
   * wall-clock budget of one plugin call (default DEFAULT_BUDGET_MS): an engine that can
   * interrupt a call enforces it itself (a trap); the watchdog backs it up by restarting the
   * worker (host/serve/supervisor.ts)
   */
  budgetMs?: number | undefined;
  /** cap on the plugin's linear memory */
  memoryBytes?: number | undefined;
  /** root of the engine's compile cache (default: the engine's own, under ~/.cache/vfiobox) */
  cacheDir?: string | undefined;
  /**
   * take over the server core a terminated worker left on socketPath (its client connection,
   * DMA maps, IRQ eventfds) instead of binding a new socket; set by the supervisor on restarts
   */
  adopt?: boolean | undefined;
  /** config space the device model starts from (the supervisor's copy, after a restart) */
  configState?: Uint8Array | undefined;
  /** interrupt routing (MSI-X table, SET_IRQS masks) likewise */
  irqState?: IrqSnapshot | undefined;
}

/** Internal event: a config-space snapshot from the worker, kept by the supervisor, never logged. */
export const CONFIG_STATE_EVENT = 'config-state';
/** Internal event: an interrupt-routing snapshot from the worker, kept likewise. */
export const IRQ_STATE_EVENT = 'irq-routing-state';

/** A notable event, as `--log-json` prints it. */
export interface ServeEvent {
  event: string;
  device: string;
  [key: string]: unknown;
}

export interface DeviceRunStats {
  name: string;
  socketPath: string;
  connected: boolean;
  device: DeviceStats;
  /** vfio-user request counts by command name */
  requests: Record<string, number>;
  /** error replies by errno name */
  errors: Record<string, number>;
  /** BAR/config accesses by region index */
  regionAccesses: Record<string, number>;
  /** BAR accesses the native server answered by calling a wasmtime plugin itself (no JS) */
  directAccesses: number;
  /** plugin dma.read/dma.write calls the native DMA port copied itself (wasmtime, no JS) */
  directDma: number;
  /** DMA windows (dma.map-window) the native server mapped, and refused */
  windowsMapped: number;
  windowsRefused: number;
  /** worker restarts by the watchdog (budget overruns, crashes) */
  watchdogRestarts: number;
}

/** Shared heartbeat between a device worker and its watchdog (Int32Array over a SAB). */
export const HB_BUSY = 0; // 1 while a plugin call runs
export const HB_SEQ = 1; // incremented at every plugin call entry
export const HB_SLOTS = 2;

// SPDX-License-Identifier: MIT
// One served device, assembled on the current thread: plugin (engine) -> grants -> device model
// (config space, fencing) -> vfio-user server (transport). Every room is entered through its
// own narrow door; this file only wires them. The thread that runs this receives the requests
// and runs the plugin: no per-access thread hop (DESIGN.md "Engines").

import { unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createPluginDevice, DEFAULT_MEMORY_BYTES } from '../device/model.js';
import type { DeviceModel } from '../device/types.js';
import { ConfigError } from '../errors.js';
import type { CompiledPlugin, PluginInstance } from '../plugins/engine.js';
import { grantFromManifest } from '../plugins/grants.js';
import { loadPlugin } from '../plugins/loader.js';
import { loadPolicy } from '../plugins/policy.js';
import { VfioUserServer } from '../vfio-user/server.js';
import {
  CONFIG_STATE_EVENT,
  DEFAULT_BUDGET_MS,
  type DeviceRunStats,
  type DeviceSpec,
  HB_BUSY,
  HB_SEQ,
  IRQ_STATE_EVENT,
  type ServeEvent,
} from './spec.js';

export interface RuntimeHooks {
  /** shared with the watchdog; absent when nobody watches (in-thread use, tests) */
  heartbeat?: Int32Array | undefined;
  onEvent?: ((event: ServeEvent) => void) | undefined;
}

export interface RunningDevice {
  readonly spec: DeviceSpec;
  readonly model: DeviceModel;
  readonly server: VfioUserServer;
  stats(): DeviceRunStats;
  /** hot reload: save-state -> swap -> load-state; a plugin that fails leaves the old one */
  reload(pluginPath: string): Promise<void>;
  close(): Promise<void>;
}

const INSTANCE_METHODS = [
  'describe',
  'configRead',
  'configWrite',
  'regionRead',
  'regionWrite',
  'reset',
  'timer',
  'saveState',
  'loadState',
  'streamReady',
  'memoryAreas',
] as const;

/**
 * Wraps a compiled plugin so every call into an instance marks the heartbeat busy: the
 * watchdog on the main thread sees a call that overran its budget, whatever entered it (an
 * access, a timer, the stream).
 */
export function watchedPlugin(
  compiled: CompiledPlugin,
  hb: Int32Array | undefined,
): CompiledPlugin {
  if (!hb) return compiled;
  const wrap = (inst: PluginInstance): PluginInstance => {
    const out = { dispose: () => inst.dispose() } as Record<string, unknown>;
    // The native handle passes through unwatched: calls made by it (the vfio-user server's
    // direct route) come from an engine that interrupts them itself (wasmtime's epochs).
    Object.defineProperty(out, 'native', { get: () => inst.native, enumerable: true });
    for (const name of INSTANCE_METHODS) {
      const fn = inst[name] as
        | ((a?: unknown, b?: unknown, c?: unknown, d?: unknown) => unknown)
        | undefined;
      if (!fn) continue; // optional (memoryAreas): absent stays absent
      // Per plugin call, on the trapped-access path: fixed arity (no rest array, no apply; no
      // instance method takes more than 4 arguments) and plain stores. Only this thread writes
      // the heartbeat; the watchdog only needs to see the values eventually, not a fence.
      out[name] = (a?: unknown, b?: unknown, c?: unknown, d?: unknown) => {
        hb[HB_SEQ] = ((hb[HB_SEQ] as number) + 1) | 0;
        hb[HB_BUSY] = 1;
        try {
          return fn.call(inst, a, b, c, d);
        } finally {
          hb[HB_BUSY] = 0;
        }
      };
    }
    return out as unknown as PluginInstance;
  };
  return {
    engine: compiled.engine,
    abi: compiled.abi,
    world: compiled.world,
    imports: compiled.imports,
    instantiate: (host, limits) => wrap(compiled.instantiate(host, limits)),
  };
}

async function compileFor(spec: DeviceSpec, path: string, hb: Int32Array | undefined) {
  const loaded = await loadPlugin(path, {
    engine: spec.engine,
    cacheDir: spec.cacheDir,
    expectSha256: spec.expectSha256,
  });
  const policy = spec.policyPath ? await loadPolicy(spec.policyPath) : undefined;
  const grant = grantFromManifest(loaded.manifest, policy, loaded.sha256);
  return { loaded, grant, compiled: watchedPlugin(loaded.compiled, hb) };
}

/** A UNIX socket server for the device's byte stream: one peer at a time. */
function streamServer(
  path: string,
  model: DeviceModel,
): { server: Server; send(d: Uint8Array): void } {
  let peer: Socket | undefined;
  const pending: Uint8Array[] = [];
  const server = createServer((sock) => {
    if (peer) {
      sock.end('vfiobox: the stream already has a peer\n');
      return;
    }
    peer = sock;
    for (const chunk of pending.splice(0)) sock.write(chunk);
    sock.on('data', (data) => model.streamInput(new Uint8Array(data)));
    sock.on('close', () => {
      if (peer === sock) peer = undefined;
    });
    sock.on('error', () => undefined);
  });
  try {
    unlinkSync(path);
  } catch {
    // not there: fine
  }
  server.listen(path);
  return {
    server,
    send(data) {
      if (peer) peer.write(data);
      else if (pending.length < 1024) pending.push(data.slice());
    },
  };
}

function parseStream(value: string | undefined): string | undefined {
  if (value === undefined || value === 'none') return undefined;
  if (!value.startsWith('unix:') || value.length <= 5) {
    throw new ConfigError(
      'ERR_VFIOBOX_STREAM',
      `--stream must be unix:PATH or none (got '${value}')`,
      'example: --stream unix:/tmp/uart.sock, then: socat - UNIX-CONNECT:/tmp/uart.sock',
    );
  }
  return value.slice(5);
}

/** Loads the plugin, builds the device and starts serving it on spec.socketPath. */
export async function startDevice(
  spec: DeviceSpec,
  hooks: RuntimeHooks = {},
): Promise<RunningDevice> {
  const emit = (event: string, extra: Record<string, unknown> = {}) =>
    hooks.onEvent?.({ event, device: spec.name, ...extra });
  const streamPath = parseStream(spec.stream);
  const { loaded, grant, compiled } = await compileFor(spec, spec.pluginPath, hooks.heartbeat);
  const model = createPluginDevice({
    name: spec.name,
    plugin: compiled,
    grant,
    limits: {
      memoryBytes: spec.memoryBytes ?? loaded.manifest.budgets.memoryBytes ?? DEFAULT_MEMORY_BYTES,
      // wasmtime enforces it on this thread; V8 ignores it and the watchdog stops an overrun
      budgetMs: spec.budgetMs ?? DEFAULT_BUDGET_MS,
    },
    log: (level, message) => emit('plugin-log', { level, message }),
    onEvent: (e) => emit(e.kind, { message: e.message, ...(e.export ? { export: e.export } : {}) }),
    // The supervisor keeps the latest config space, so a restarted worker's model resumes what
    // the guest programmed (the socket side survives in the native server core).
    configState: spec.configState,
    onConfigState: (bytes) => emit(CONFIG_STATE_EVENT, { bytes }),
    irqState: spec.irqState,
    onIrqState: (state) => emit(IRQ_STATE_EVENT, { state }),
  });
  emit('loaded', {
    plugin: loaded.path,
    sha256: loaded.sha256,
    abi: loaded.abi,
    engine: loaded.compiled.engine,
  });
  const stream = streamPath ? streamServer(streamPath, model) : undefined;
  // persistent: a watchdog restart terminates this worker; the socket, the client connection
  // and the request in flight stay for the supervisor's fence and the next worker's adopt
  const server = new VfioUserServer(model, {
    socketPath: spec.socketPath,
    persistent: true,
    adopt: spec.adopt ?? false,
    ...(stream ? { stream: { onDeviceOutput: (d: Uint8Array) => stream.send(d) } } : {}),
  });
  server.on('connect', () => emit('connect'));
  server.on('adopt', () => emit('adopted'));
  server.on('disconnect', (reason) => emit('disconnect', { reason }));
  server.on('dma-map', (e) => emit('dma-map', { ...e }));
  server.on('dma-unmap', (e) => emit('dma-unmap', { ...e }));
  server.on('protocol-error', (err) =>
    emit('protocol-error', { op: err.op, code: err.code, message: err.message }),
  );
  server.listen();
  emit('listening', { socket: spec.socketPath });
  let closed = false;
  return {
    spec,
    model,
    server,
    stats: () => runStats(spec, model, server),
    async reload(path) {
      const next = await compileFor(spec, path, hooks.heartbeat);
      model.reload(next.compiled);
      emit('reloaded', {
        plugin: next.loaded.path,
        sha256: next.loaded.sha256,
        engine: next.loaded.compiled.engine,
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      server.close();
      model.close();
      if (stream) await new Promise<void>((resolve) => stream.server.close(() => resolve()));
    },
  };
}

function runStats(spec: DeviceSpec, model: DeviceModel, server: VfioUserServer): DeviceRunStats {
  const s = server.stats();
  const regionAccesses: Record<string, number> = {};
  s.regionReads.forEach((n, i) => {
    regionAccesses[String(i)] = (regionAccesses[String(i)] ?? 0) + n;
  });
  s.regionWrites.forEach((n, i) => {
    regionAccesses[String(i)] = (regionAccesses[String(i)] ?? 0) + n;
  });
  return {
    name: spec.name,
    socketPath: spec.socketPath,
    connected: server.connected,
    device: model.stats(),
    requests: s.requests,
    errors: s.errors,
    regionAccesses,
    directAccesses: s.directReads + s.directWrites,
    directDma: s.directDmaReads + s.directDmaWrites,
    windowsMapped: s.directWindowsMapped,
    windowsRefused: s.directWindowsRefused,
    watchdogRestarts: 0,
  };
}

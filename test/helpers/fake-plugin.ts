// SPDX-License-Identifier: MIT
// A device plugin in plain TypeScript (a CompiledPlugin whose instances are JS objects), so the
// device model, fencing and the harness are tested without an engine or a .wasm file.
//
// BAR0 (4 KiB, mem32) register map, all 4-byte unless noted:
//   0x00 SCRATCH     RW (1/2/4/8 bytes)
//   0x04 IRQ_RAISE   WO: irq.raise(value)
//   0x08 IRQ_LOWER   WO: irq.lower(value)
//   0x0c TRAP        any access throws PluginError 'trap' (a plugin bug on demand)
//   0x10 DMA_IOVA    RW, 8 bytes
//   0x18 DMA_LEN     RW (<= 256)
//   0x1c DMA_CMD     WO: 1 = RAM -> BUF, 2 = BUF -> RAM; then raises vector 0 if DMA_IRQ set
//   0x20 TIMER_NS    WO: arms timer 1; when it fires TIMERS_FIRED++ and vector 0 is raised
//   0x24 TIMERS_FIRED RO
//   0x28 LAST_ERR    RO: the last WitError code from an import, as an index of ERR_CODES (0 = none)
//   0x2c VERSION     RO: the plugin's `version`
//   0x30 STREAM_TX   WO: byte-stream.write of the low byte; RO: bytes received so far
//   0x34 STREAM_RX   RO: the last byte received
//   0x38 UNSUPPORTED any access returns access-error 'unsupported'
//   0x3c DMA_IRQ     RW: 1 = raise vector 0 when a DMA command completes
//   0x100-0x1ff BUF  the DMA buffer, any width
// BAR2: 16 KiB mem64 prefetchable, MSI-X table (4 vectors) at 0x0, PBA at 0x800.
// BAR4: 32-byte I/O BAR, reads its offset.
// Config: 0xa0 is a device-specific RW dword.

import { PluginError } from '../../host/errors.js';
import type {
  AccessWidth,
  CompiledPlugin,
  ConfigWidth,
  DeviceDescription,
  HostImports,
  InstanceLimits,
  PluginInstance,
} from '../../host/plugins/engine.js';
import { WitError } from '../../host/plugins/engine.js';

export const REG = {
  SCRATCH: 0x00,
  IRQ_RAISE: 0x04,
  IRQ_LOWER: 0x08,
  TRAP: 0x0c,
  DMA_IOVA: 0x10,
  DMA_LEN: 0x18,
  DMA_CMD: 0x1c,
  TIMER_NS: 0x20,
  TIMERS_FIRED: 0x24,
  LAST_ERR: 0x28,
  VERSION: 0x2c,
  STREAM_TX: 0x30,
  STREAM_RX: 0x34,
  UNSUPPORTED: 0x38,
  DMA_IRQ: 0x3c,
  BUF: 0x100,
  CONFIG_REG: 0xa0,
} as const;

export const ERR_CODES = ['', 'not-mapped', 'not-granted', 'invalid-vector', 'too-large', 'other'];

export function fakeDescription(): DeviceDescription {
  return {
    vendorId: 0x1af4,
    deviceId: 0x10f0,
    subsystemVendorId: 0x1af4,
    subsystemId: 0x0001,
    classCode: 0xff0000,
    revision: 0x02,
    bars: [
      { index: 0, sizeBytes: 4096n, kind: 'mem32', prefetchable: false },
      { index: 2, sizeBytes: 16384n, kind: 'mem64', prefetchable: true },
      { index: 4, sizeBytes: 32n, kind: 'io', prefetchable: false },
    ],
    irqs: {
      intx: 'a',
      msiVectors: 4,
      msix: { vectors: 4, tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x800 },
    },
    claimedRanges: [],
  };
}

export interface FakeCalls {
  regionRead: number;
  regionWrite: number;
  configRead: number;
  configWrite: number;
  reset: number;
  timer: number;
  streamReady: number;
}

export interface FakePlugin extends CompiledPlugin {
  /** what describe() answers (may be anything: it is untrusted) */
  describe: () => unknown;
  /** VERSION register value of new instances */
  version: number;
  /** make the next instantiations throw a trap */
  trapOnInstantiate: boolean;
  /** make load-state refuse */
  failLoadState: boolean;
  /** make save-state trap */
  trapSaveState: boolean;
  /** make load-state arm timer 1 (1 us) before it checks the state */
  armTimerOnLoad: boolean;
  readonly instances: FakeInstance[];
}

const MAGIC = 0x46414b45; // "FAKE"

class FakeInstance implements PluginInstance {
  readonly calls: FakeCalls = {
    regionRead: 0,
    regionWrite: 0,
    configRead: 0,
    configWrite: 0,
    reset: 0,
    timer: 0,
    streamReady: 0,
  };
  disposed = false;
  #scratch = 0n;
  #dmaIova = 0n;
  #dmaLen = 0;
  #dmaIrq = 0;
  #timersFired = 0;
  #lastErr = 0;
  #rxCount = 0;
  #rxLast = 0;
  #config = 0;
  #buf = new Uint8Array(256);

  constructor(
    readonly host: HostImports,
    readonly plugin: FakePlugin,
    readonly version: number,
  ) {}

  #live(what: string): void {
    if (this.disposed) throw new PluginError('fake', what, 'invalid', 'the instance was disposed');
  }

  #import(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof WitError)) throw err;
      const code = ERR_CODES.indexOf(err.code);
      this.#lastErr = code > 0 ? code : ERR_CODES.length - 1;
    }
  }

  describe(): DeviceDescription {
    this.#live('describe');
    return this.plugin.describe() as DeviceDescription;
  }

  configRead(offset: number, _width: ConfigWidth): number {
    this.#live('config-read');
    this.calls.configRead++;
    return offset === REG.CONFIG_REG ? this.#config : 0;
  }

  configWrite(offset: number, _width: ConfigWidth, value: number): void {
    this.#live('config-write');
    this.calls.configWrite++;
    if (offset === REG.CONFIG_REG) this.#config = value;
  }

  regionRead(bar: number, offset: bigint, width: AccessWidth): bigint {
    this.#live('region-read');
    this.calls.regionRead++;
    if (bar === 4) return offset;
    if (bar !== 0) return 0n;
    const off = Number(offset);
    if (off >= REG.BUF && off < REG.BUF + 256) {
      let v = 0n;
      for (let i = width - 1; i >= 0; i--)
        v = (v << 8n) | BigInt(this.#buf[off - REG.BUF + i] ?? 0);
      return v;
    }
    switch (off) {
      case REG.SCRATCH:
        return BigInt.asUintN(8 * width, this.#scratch);
      case REG.TRAP:
        throw new PluginError('fake', 'region-read', 'trap', 'deliberate trap (read)');
      case REG.UNSUPPORTED:
        throw new WitError('unsupported');
      case REG.DMA_IOVA:
        return this.#dmaIova;
      case REG.DMA_LEN:
        return BigInt(this.#dmaLen);
      case REG.TIMERS_FIRED:
        return BigInt(this.#timersFired);
      case REG.LAST_ERR:
        return BigInt(this.#lastErr);
      case REG.VERSION:
        return BigInt(this.version);
      case REG.STREAM_TX:
        return BigInt(this.#rxCount);
      case REG.STREAM_RX:
        return BigInt(this.#rxLast);
      case REG.DMA_IRQ:
        return BigInt(this.#dmaIrq);
      default:
        return 0n;
    }
  }

  regionWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void {
    this.#live('region-write');
    this.calls.regionWrite++;
    if (bar !== 0) return;
    const off = Number(offset);
    if (off >= REG.BUF && off < REG.BUF + 256) {
      for (let i = 0; i < width; i++)
        this.#buf[off - REG.BUF + i] = Number((value >> BigInt(8 * i)) & 0xffn);
      return;
    }
    const v = Number(BigInt.asUintN(32, value));
    switch (off) {
      case REG.SCRATCH:
        this.#scratch = value;
        return;
      case REG.IRQ_RAISE:
        this.#import(() => this.host.irq.raise(v));
        return;
      case REG.IRQ_LOWER:
        this.#import(() => this.host.irq.lower(v));
        return;
      case REG.TRAP:
        throw new PluginError('fake', 'region-write', 'trap', 'deliberate trap (write)');
      case REG.UNSUPPORTED:
        throw new WitError('unsupported');
      case REG.DMA_IOVA:
        this.#dmaIova = value;
        return;
      case REG.DMA_LEN:
        this.#dmaLen = Math.min(v, 256);
        return;
      case REG.DMA_CMD:
        this.#dma(v);
        return;
      case REG.TIMER_NS:
        this.#import(() => this.host.clock.setTimer(1, BigInt(v)));
        return;
      case REG.STREAM_TX:
        this.host.byteStream.write(new Uint8Array([v & 0xff]));
        return;
      case REG.DMA_IRQ:
        this.#dmaIrq = v & 1;
        return;
      default:
        return;
    }
  }

  #dma(cmd: number): void {
    this.#lastErr = 0;
    this.#import(() => {
      if (cmd === 1) this.#buf.set(this.host.dma.read(this.#dmaIova, this.#dmaLen));
      if (cmd === 2) this.host.dma.write(this.#dmaIova, this.#buf.slice(0, this.#dmaLen));
    });
    if (this.#dmaIrq) this.#import(() => this.host.irq.raise(0));
  }

  reset(): void {
    this.#live('reset');
    this.calls.reset++;
    this.#scratch = 0n;
    this.#dmaIova = 0n;
    this.#dmaLen = 0;
    this.#dmaIrq = 0;
    this.#timersFired = 0;
    this.#lastErr = 0;
    this.#config = 0;
    this.#buf.fill(0);
  }

  timer(id: number): void {
    this.#live('timer');
    this.calls.timer++;
    if (id !== 1) return;
    this.#timersFired++;
    this.#import(() => this.host.irq.raise(0));
  }

  saveState(): Uint8Array {
    this.#live('save-state');
    if (this.plugin.trapSaveState)
      throw new PluginError('fake', 'save-state', 'trap', 'deliberate');
    const out = new Uint8Array(32 + 256);
    const view = new DataView(out.buffer);
    view.setUint32(0, MAGIC, true);
    view.setBigUint64(8, this.#scratch, true);
    view.setUint32(16, this.#timersFired, true);
    view.setUint32(20, this.#config, true);
    out.set(this.#buf, 32);
    return out;
  }

  loadState(state: Uint8Array): void {
    this.#live('load-state');
    if (this.plugin.armTimerOnLoad) this.host.clock.setTimer(1, 1000n);
    if (this.plugin.failLoadState) throw new WitError('refusing this state (test)');
    const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
    if (state.length !== 288 || view.getUint32(0, true) !== MAGIC) throw new WitError('bad magic');
    this.#scratch = view.getBigUint64(8, true);
    this.#timersFired = view.getUint32(16, true);
    this.#config = view.getUint32(20, true);
    this.#buf.set(state.subarray(32));
  }

  streamReady(): void {
    this.#live('stream-ready');
    this.calls.streamReady++;
    for (;;) {
      const got = this.host.byteStream.read(16);
      if (got.length === 0) return;
      this.#rxCount += got.length;
      this.#rxLast = got[got.length - 1] ?? 0;
    }
  }

  dispose(): void {
    this.disposed = true;
  }
}

export type { FakeInstance };

/** A fresh fake plugin; tweak its fields to change what later instances do. */
export function createFakePlugin(
  init: Partial<Pick<FakePlugin, 'describe' | 'version'>> = {},
): FakePlugin {
  const plugin: FakePlugin = {
    engine: 'v8',
    abi: '0.1.0',
    world: 'emulated-device',
    imports: ['irq', 'dma', 'log', 'clock', 'byte-stream'],
    describe: init.describe ?? fakeDescription,
    version: init.version ?? 1,
    trapOnInstantiate: false,
    failLoadState: false,
    trapSaveState: false,
    armTimerOnLoad: false,
    instances: [],
    instantiate(host: HostImports, _limits: InstanceLimits): PluginInstance {
      if (plugin.trapOnInstantiate)
        throw new PluginError('fake', 'instantiate', 'trap', 'deliberate');
      const inst = new FakeInstance(host, plugin, plugin.version);
      plugin.instances.push(inst);
      return inst;
    },
  };
  return plugin;
}

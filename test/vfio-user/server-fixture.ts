// SPDX-License-Identifier: MIT
// Shared by test/vfio-user/server-*.test.ts: a trivial in-test DeviceModel (RAM-backed BAR0
// and config space) and a raw vfio-user client on the native VfioUserSocket with its own
// minimal encoder, so malformed messages can be sent byte for byte.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  DeviceModel,
  DeviceStats,
  DmaSpace,
  IrqLayout,
  IrqSink,
  RegionLayout,
} from '../../host/device/types.js';
import {
  IRQ_FLAG_EVENTFD,
  IRQ_FLAG_MASKABLE,
  IRQ_INTX,
  IRQ_MSI,
  REGION_CONFIG,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
} from '../../host/device/types.js';
import { loadVfioUserNative } from '../../host/native/binding.js';
import type { NativeVfioUserSocket } from '../../host/native/types.js';

export const native = loadVfioUserNative();

export const CMD = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
} as const;
export const FLAG_REPLY = 1;
export const FLAG_NO_REPLY = 0x10;
export const FLAG_ERROR = 0x20;
export const E = { EIO: 5, EFAULT: 14, EEXIST: 17, EINVAL: 22, ENOSYS: 38, ENOENT: 2 } as const;

/** A BAR0 of 4 KiB RAM, a 256-byte config space, INTx (maskable) and 4 MSI vectors. */
export class RamDevice implements DeviceModel {
  readonly name = 'ram';
  readonly regions: RegionLayout[] = [
    { index: 0, sizeBytes: 4096, flags: REGION_FLAG_READ | REGION_FLAG_WRITE, mmapAreas: [] },
    {
      index: REGION_CONFIG,
      sizeBytes: 256,
      flags: REGION_FLAG_READ | REGION_FLAG_WRITE,
      mmapAreas: [],
    },
  ];
  readonly irqs: IrqLayout[] = [
    { index: IRQ_INTX, count: 1, flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_MASKABLE },
    { index: IRQ_MSI, count: 4, flags: IRQ_FLAG_EVENTFD },
  ];
  readonly resetSupported = true;
  readonly bar0 = new Uint8Array(4096);
  readonly config = new Uint8Array(256);
  io: { irq: IrqSink; dma: DmaSpace } | undefined;
  attaches = 0;
  detaches = 0;
  resets = 0;
  /** when set, the next read throws it (a device bug) */
  throwOnRead: Error | undefined;

  #mem(region: number): Uint8Array {
    if (region === 0) return this.bar0;
    if (region === REGION_CONFIG) return this.config;
    throw new RangeError(`region ${region}`);
  }
  read(region: number, offset: number, out: Uint8Array): void {
    const err = this.throwOnRead;
    this.throwOnRead = undefined;
    if (err) throw err;
    out.set(this.#mem(region).subarray(offset, offset + out.length));
  }
  write(region: number, offset: number, data: Uint8Array): void {
    this.#mem(region).set(data, offset);
  }
  reset(): void {
    this.resets++;
    this.bar0.fill(0);
  }
  attach(io: { irq: IrqSink; dma: DmaSpace }): void {
    this.attaches++;
    this.io = io;
  }
  detach(): void {
    this.detaches++;
    this.io = undefined;
  }
  streamInput(): void {}
  stats(): DeviceStats {
    return { reads: 0, writes: 0, irqs: 0, denied: {}, fences: 0, restarts: 0, fenced: false };
  }
  close(): void {}
}

export interface RawReply {
  msgId: number;
  command: number;
  flags: number;
  error: number;
  payload: Uint8Array;
  fds: number[];
}

export function message(
  msgId: number,
  command: number,
  payload: Uint8Array,
  flags = 0,
): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, msgId, true);
  v.setUint16(2, command, true);
  v.setUint32(4, out.length, true);
  v.setUint32(8, flags, true);
  out.set(payload, 16);
  return out;
}

export type Field = ['u16', number] | ['u32', number] | ['u64', bigint] | ['bytes', Uint8Array];

/** little-endian payload builder: pack([['u32', 1], ['u64', 2n], ['bytes', data]]) */
export function pack(fields: Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const field of fields) {
    if (field[0] === 'bytes') {
      parts.push(field[1]);
    } else if (field[0] === 'u64') {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, field[1], true);
      parts.push(b);
    } else {
      const b = new Uint8Array(field[0] === 'u16' ? 2 : 4);
      const v = new DataView(b.buffer);
      if (field[0] === 'u16') v.setUint16(0, field[1], true);
      else v.setUint32(0, field[1], true);
      parts.push(b);
    }
  }
  return new Uint8Array(Buffer.concat(parts));
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A client that matches replies to requests by msg_id and records unexpected messages. */
export class RawClient {
  readonly sock: NativeVfioUserSocket;
  readonly unexpected: RawReply[] = [];
  readonly closed: Promise<number>;
  /** answers server-to-client commands; unset, they land in `unexpected` */
  onCommand: ((command: RawReply) => void) | undefined;
  #nextId = 1;
  #pending = new Map<number, (r: RawReply) => void>();

  constructor(path: string) {
    this.sock = native.VfioUserSocket.connect(path);
    let onClose: (errno: number) => void = () => {};
    this.closed = new Promise((resolve) => {
      onClose = resolve;
    });
    this.sock.onClose((errno) => onClose(errno));
    this.sock.onMessage((msg, fds) => {
      const v = view(msg);
      const reply: RawReply = {
        msgId: v.getUint16(0, true),
        command: v.getUint16(2, true),
        flags: v.getUint32(8, true),
        error: v.getUint32(12, true),
        payload: msg.subarray(16),
        fds,
      };
      if ((reply.flags & 0xf) === 0) {
        // a server-to-client command (DMA_READ/DMA_WRITE)
        if (this.onCommand) this.onCommand(reply);
        else this.unexpected.push(reply);
        return;
      }
      const waiter = this.#pending.get(reply.msgId);
      if (!waiter) {
        this.unexpected.push(reply);
        return;
      }
      this.#pending.delete(reply.msgId);
      waiter(reply);
    });
  }

  /** sends raw bytes and waits for the reply whose msg_id is `msgId` */
  sendRaw(bytes: Uint8Array, msgId: number, fds: number[] = []): Promise<RawReply> {
    const reply = new Promise<RawReply>((resolve) => this.#pending.set(msgId, resolve));
    this.sock.send(bytes, fds);
    return reply;
  }

  request(command: number, payload: Uint8Array, fds: number[] = []): Promise<RawReply> {
    const id = this.#nextId++;
    return this.sendRaw(message(id, command, payload), id, fds);
  }

  /** a No_reply command: nothing is awaited */
  post(command: number, payload: Uint8Array): void {
    this.sock.send(message(this.#nextId++, command, payload, FLAG_NO_REPLY));
  }

  async negotiate(json = '{"capabilities":{"max_msg_fds":8}}'): Promise<RawReply> {
    const text = new TextEncoder().encode(`${json}\0`);
    const reply = await this.request(
      CMD.VERSION,
      pack([
        ['u16', 0],
        ['u16', 0],
        ['bytes', text],
      ]),
    );
    if (reply.flags & FLAG_ERROR) throw new Error(`VERSION failed: errno ${reply.error}`);
    return reply;
  }

  regionRead(region: number, offset: number, count: number): Promise<RawReply> {
    return this.request(CMD.REGION_READ, accessHead(region, offset, count));
  }

  regionWrite(region: number, offset: number, data: Uint8Array): Promise<RawReply> {
    return this.request(CMD.REGION_WRITE, writePayload(region, offset, data));
  }

  close(): void {
    this.sock.close();
  }
}

export function accessHead(region: number, offset: number, count: number): Uint8Array {
  return pack([
    ['u64', BigInt(offset)],
    ['u32', region],
    ['u32', count],
  ]);
}

export function writePayload(region: number, offset: number, data: Uint8Array): Uint8Array {
  return pack([
    ['bytes', accessHead(region, offset, data.length)],
    ['bytes', data],
  ]);
}

export function dmaMapPayload(iova: bigint, size: bigint, flags: number, offset = 0n): Uint8Array {
  return pack([
    ['u32', 32],
    ['u32', flags],
    ['u64', offset],
    ['u64', iova],
    ['u64', size],
  ]);
}

export function dmaUnmapPayload(iova: bigint, size: bigint, flags = 0): Uint8Array {
  return pack([
    ['u32', 24],
    ['u32', flags],
    ['u64', iova],
    ['u64', size],
  ]);
}

export function setIrqsPayload(
  flags: number,
  index: number,
  start: number,
  count: number,
): Uint8Array {
  return pack([
    ['u32', 20],
    ['u32', flags],
    ['u32', index],
    ['u32', start],
    ['u32', count],
  ]);
}

export function isError(reply: RawReply, errno: number): boolean {
  return (reply.flags & FLAG_ERROR) !== 0 && reply.error === errno && reply.payload.length === 0;
}

export function tempSocketPath(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-vu-'));
  return {
    path: join(dir, 'dev.sock'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** resolves on the next emission of `event` */
export function once<T extends unknown[]>(
  emitter: { once(event: string, cb: (...args: T) => void): unknown },
  event: string,
): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}

// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../host/errors.js';
import * as p from '../../host/vfio-user/protocol.js';

const test = suite('vfio-user codec');
const EINVAL = 22;

function throwsEinval(fn: () => unknown, op: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ProtocolError);
    assert.is((err as ProtocolError).op, op);
    assert.is((err as ProtocolError).errno, EINVAL);
    return;
  }
  assert.unreachable(`expected ProtocolError from ${op}`);
}

function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}

function u64(bytes: Uint8Array, at: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at, true);
}

test('command names map both ways and unknown numbers get CMD_<n>', () => {
  assert.is(p.Command.DMA_MAP, 2);
  assert.is(p.Command.REGION_WRITE_MULTI, 15);
  assert.is(p.commandName(13), 'DEVICE_RESET');
  assert.is(p.commandName(14), 'CMD_14');
  assert.is(p.opName(9), 'vfio-user:REGION_READ');
});

test('header fields sit at offsets 0/2/4/8/12 and round-trip', () => {
  const header = { msgId: 0xbeef, command: 5, msgSize: 48, flags: 0x31, error: 17 };
  const bytes = p.encodeHeader(header);
  assert.is(bytes.byteLength, 16);
  assert.is(bytes[0], 0xef);
  assert.is(bytes[2], 5);
  assert.is(u32(bytes, 4), 48);
  assert.is(u32(bytes, 8), 0x31);
  assert.is(u32(bytes, 12), 17);
  assert.equal(p.decodeHeader(bytes), header);
});

test('a header shorter than 16 bytes is refused', () => {
  throwsEinval(() => p.decodeHeader(new Uint8Array(15)), 'vfio-user:HEADER');
});

test('encodeMessage sets msg_size to header plus payload, decodeMessage checks it', () => {
  const msg = p.encodeMessage({ msgId: 1, command: 9, flags: 0, error: 0 }, new Uint8Array(16));
  assert.is(u32(msg, 4), 32);
  const { header, payload } = p.decodeMessage(msg);
  assert.is(header.msgSize, 32);
  assert.is(payload.byteLength, 16);
  const lie = msg.slice();
  new DataView(lie.buffer).setUint32(4, 40, true);
  throwsEinval(() => p.decodeMessage(lie), 'vfio-user:REGION_READ');
});

test('VERSION carries major/minor then NUL-terminated JSON, and round-trips', () => {
  const json = { capabilities: { max_msg_fds: 8, write_multiple: true } };
  const bytes = p.encodeVersion({ major: 0, minor: 2, json });
  assert.is(bytes[2], 2);
  assert.is(bytes[bytes.byteLength - 1], 0);
  assert.equal(p.decodeVersion(bytes), { major: 0, minor: 2, json });
  assert.equal(p.decodeVersion(p.encodeVersion({ major: 1, minor: 0 })), { major: 1, minor: 0 });
});

test('VERSION decode refuses short payloads, missing NUL, inner NUL, bad JSON and non-objects', () => {
  const op = 'vfio-user:VERSION';
  throwsEinval(() => p.decodeVersion(new Uint8Array(3)), op);
  const text = (s: string) => new Uint8Array([0, 0, 0, 0, ...new TextEncoder().encode(s)]);
  throwsEinval(() => p.decodeVersion(text('{}')), op);
  throwsEinval(() => p.decodeVersion(text('{}\0{}\0')), op);
  throwsEinval(() => p.decodeVersion(text('{"a":\0')), op);
  throwsEinval(() => p.decodeVersion(text('[1]\0')), op);
  throwsEinval(() => p.decodeVersion(new Uint8Array([0, 0, 0, 0, 0xff, 0xfe, 0])), op);
});

test('parseCapabilities fills spec defaults and reads every known key', () => {
  assert.equal(p.parseCapabilities(undefined), {
    maxMsgFds: 1,
    maxDataXferSize: 1048576,
    maxDmaMaps: 65535,
    pgsizes: 4096,
    writeMultiple: false,
  });
  const caps = p.parseCapabilities({
    capabilities: {
      max_msg_fds: 8,
      max_data_xfer_size: 4096,
      twin_socket: { supported: true, fd_index: 0 },
      migration: { pgsize: 4096, max_bitmap_size: 1024 },
      write_multiple: true,
    },
  });
  assert.is(caps.maxMsgFds, 8);
  assert.is(caps.maxDataXferSize, 4096);
  assert.equal(caps.twinSocket, { supported: true, fdIndex: 0 });
  assert.equal(caps.migration, { pgsize: 4096, maxBitmapSize: 1024 });
  assert.ok(caps.writeMultiple);
});

test('parseCapabilities refuses wrongly typed values', () => {
  const op = 'vfio-user:VERSION';
  throwsEinval(() => p.parseCapabilities({ capabilities: { max_msg_fds: '8' } }), op);
  throwsEinval(() => p.parseCapabilities({ capabilities: { max_msg_fds: -1 } }), op);
  throwsEinval(() => p.parseCapabilities({ capabilities: 3 }), op);
  throwsEinval(() => p.parseCapabilities({ capabilities: { migration: [] } }), op);
});

test('DMA_MAP is 32 bytes with offset@8 addr@16 size@24 and round-trips', () => {
  const map = { flags: 3, fdOffset: 0xc0000n, iova: 0xc0000n, sizeBytes: 0x1ff40000n };
  const bytes = p.encodeDmaMap(map);
  assert.is(bytes.byteLength, p.DMA_MAP_SIZE);
  assert.is(u32(bytes, 0), 32);
  assert.is(u64(bytes, 16), 0xc0000n);
  assert.equal(p.decodeDmaMap(bytes), { argsz: 32, ...map });
  const wrap = { flags: 1, fdOffset: 0n, iova: 2n ** 64n - 4096n, sizeBytes: 2n ** 64n - 1n };
  assert.equal(p.decodeDmaMap(p.encodeDmaMap(wrap)), { argsz: 32, ...wrap });
  throwsEinval(() => p.decodeDmaMap(new Uint8Array(31)), 'vfio-user:DMA_MAP');
  throwsEinval(() => p.decodeDmaMap(new Uint8Array(33)), 'vfio-user:DMA_MAP');
});

test('DMA_UNMAP is 24 bytes with addr@8 size@16 and round-trips', () => {
  const unmap = { flags: p.DMA_UNMAP_FLAG_ALL, iova: 0x1000n, sizeBytes: 0x2000n };
  const bytes = p.encodeDmaUnmap(unmap);
  assert.is(bytes.byteLength, 24);
  assert.is(u64(bytes, 16), 0x2000n);
  assert.equal(p.decodeDmaUnmap(bytes), { argsz: 24, ...unmap });
  throwsEinval(() => p.decodeDmaUnmap(new Uint8Array(23)), 'vfio-user:DMA_UNMAP');
});

test('DEVICE_GET_INFO request is argsz 16 and zeros; the reply round-trips', () => {
  const req = p.encodeDeviceInfo();
  assert.equal([...req], [16, 0, 0, 0, ...new Array(12).fill(0)]);
  const info = { argsz: 16, flags: 3, numRegions: 9, numIrqs: 5 };
  assert.equal(p.decodeDeviceInfo(p.encodeDeviceInfo(info)), info);
  throwsEinval(() => p.decodeDeviceInfo(new Uint8Array(12)), 'vfio-user:DEVICE_GET_INFO');
});

const BAR1 = {
  flags: 0x7,
  index: 1,
  sizeBytes: 0x4000n,
  offset: 1n << 40n,
  caps: {
    sparseMmap: [
      { offset: 0n, size: 0x1000n },
      { offset: 0x2000n, size: 0x1000n },
    ],
  },
};

test('region info with a sparse mmap cap is 80 bytes, sets CAPS, and round-trips', () => {
  const bytes = p.encodeRegionInfo(BAR1);
  assert.is(bytes.byteLength, 80, 'the [OBS] BAR1 reply size');
  const info = p.decodeRegionInfo(bytes);
  assert.is(info.argsz, 80);
  assert.is(info.flags, 0xf);
  assert.is(info.capOffset, 32);
  assert.is(info.offset, 1n << 40n);
  assert.equal(info.caps, BAR1.caps);
});

test('region info cut to argsz 32 keeps argsz 80 and parses no caps', () => {
  const bytes = p.encodeRegionInfo(BAR1, 32);
  assert.is(bytes.byteLength, 32);
  const info = p.decodeRegionInfo(bytes);
  assert.is(info.argsz, 80);
  assert.equal(info.caps, {});
});

test('region info chains sparse mmap, type and msix-mappable caps and notes unknown ids', () => {
  const caps = { ...BAR1.caps, type: { type: 0x8086, subtype: 3 }, msixMappable: true };
  const bytes = p.encodeRegionInfo({ ...BAR1, index: 9, caps });
  assert.is(u32(bytes, 32 + 4), 80, 'next of the first cap counts from the struct start');
  assert.equal(p.decodeRegionInfo(bytes).caps, caps);
  const unknown = bytes.slice();
  new DataView(unknown.buffer).setUint16(80, 0x77, true);
  assert.equal(p.decodeRegionInfo(unknown).caps.unknown, [0x77]);
});

test('region info refuses short structs, caps past the end, loops and oversized area counts', () => {
  const op = 'vfio-user:DEVICE_GET_REGION_INFO';
  throwsEinval(() => p.decodeRegionInfo(new Uint8Array(31)), op);
  const full = p.encodeRegionInfo({ ...BAR1, caps: { ...BAR1.caps, msixMappable: true } });
  const view = (b: Uint8Array) => new DataView(b.buffer);
  const pastEnd = full.slice();
  view(pastEnd).setUint32(12, full.byteLength - 4, true);
  throwsEinval(() => p.decodeRegionInfo(pastEnd), op);
  const loop = full.slice();
  view(loop).setUint32(32 + 4, 32, true);
  throwsEinval(() => p.decodeRegionInfo(loop), op);
  const intoStruct = full.slice();
  view(intoStruct).setUint32(12, 8, true);
  throwsEinval(() => p.decodeRegionInfo(intoStruct), op);
  const areas = full.slice();
  view(areas).setUint32(32 + 8, 0x10000000, true);
  throwsEinval(() => p.decodeRegionInfo(areas), op);
});

test('region info request carries argsz and index only', () => {
  const bytes = p.encodeRegionInfoRequest(7, 80);
  assert.is(bytes.byteLength, 32);
  assert.is(u32(bytes, 0), 80);
  assert.is(u32(bytes, 8), 7);
  assert.is(u64(bytes, 16), 0n);
});

test('IRQ info round-trips and refuses 15 bytes', () => {
  const info = { argsz: 16, flags: 0b1001, index: 2, count: 32 };
  assert.equal(p.decodeIrqInfo(p.encodeIrqInfo(info)), info);
  throwsEinval(() => p.decodeIrqInfo(new Uint8Array(15)), 'vfio-user:DEVICE_GET_IRQ_INFO');
});

test('SET_IRQS is 20 bytes plus data, argsz its own size, and round-trips', () => {
  const flags = p.IRQ_SET_DATA_BOOL | p.IRQ_SET_ACTION_TRIGGER;
  const bytes = p.encodeIrqSet({
    flags,
    index: 1,
    start: 2,
    count: 3,
    data: new Uint8Array([1, 0, 1]),
  });
  assert.is(bytes.byteLength, 23);
  assert.is(u32(bytes, 0), 23);
  assert.is(u32(bytes, 16), 3);
  const set = p.decodeIrqSet(bytes);
  assert.equal(
    { ...set, data: [...set.data] },
    { argsz: 23, flags, index: 1, start: 2, count: 3, data: [1, 0, 1] },
  );
  assert.is(p.IRQ_SET_DATA_EVENTFD | p.IRQ_SET_ACTION_TRIGGER, 0x24, 'the [OBS] QEMU INTx flags');
  throwsEinval(() => p.decodeIrqSet(new Uint8Array(19)), 'vfio-user:DEVICE_SET_IRQS');
});

test('REGION_READ/WRITE head is offset@0 region@8 count@12 and data must match count', () => {
  const write = p.encodeRegionAccess({
    offset: 0x10n,
    region: 0,
    data: new Uint8Array([1, 2, 3, 4]),
  });
  assert.is(write.byteLength, 20);
  assert.is(u32(write, 12), 4);
  const got = p.decodeRegionAccess(p.Command.REGION_WRITE, write, true);
  assert.equal([got.offset, got.region, got.count, [...got.data]], [0x10n, 0, 4, [1, 2, 3, 4]]);
  const read = p.encodeRegionAccess({ offset: 4n, region: 7, count: 2 });
  assert.is(read.byteLength, 16);
  assert.is(p.decodeRegionAccess(p.Command.REGION_READ, read, false).count, 2);
  const op = 'vfio-user:REGION_READ';
  throwsEinval(() => p.decodeRegionAccess(p.Command.REGION_READ, read, true), op);
  throwsEinval(() => p.decodeRegionAccess(p.Command.REGION_READ, new Uint8Array(15), false), op);
  throwsEinval(() => p.decodeRegionAccess(p.Command.REGION_READ, write, false), op);
});

test('DMA_READ/WRITE head is addr@0 count(u64)@8 and data must match count', () => {
  const data = new Uint8Array([9, 8, 7]);
  const write = p.encodeDmaAccess({ iova: 0x10000n, data });
  assert.is(write.byteLength, 19);
  assert.is(u64(write, 8), 3n);
  const got = p.decodeDmaAccess(p.Command.DMA_WRITE, write, true);
  assert.equal([got.iova, got.count, [...got.data]], [0x10000n, 3n, [9, 8, 7]]);
  const read = p.encodeDmaAccess({ iova: 0x10000n, count: 1n << 40n });
  assert.is(p.decodeDmaAccess(p.Command.DMA_READ, read, false).count, 1n << 40n);
  throwsEinval(() => p.decodeDmaAccess(p.Command.DMA_READ, read, true), 'vfio-user:DMA_READ');
  throwsEinval(
    () => p.decodeDmaAccess(p.Command.DMA_WRITE, write.subarray(0, 18), true),
    'vfio-user:DMA_WRITE',
  );
  throwsEinval(
    () => p.decodeDmaAccess(p.Command.DMA_READ, new Uint8Array(8), false),
    'vfio-user:DMA_READ',
  );
});

test.run();

// SPDX-License-Identifier: MIT
// The V8 engine's own lowering of dma.read/dma.write (host/plugins/engines/v8-dma.ts): a host
// with readInto/writeFrom gets the plugin's memory and moves the bytes itself; one without
// gets read/write as before; errors reach the plugin as err(case) either way.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type DmaTarget, WitError } from '../../host/plugins/engine.js';
import { DmaLowering } from '../../host/plugins/engines/v8-dma.js';
import { wasm } from '../../host/plugins/engines/wasm-api.js';
import { compiledPlugin, type FakeHost, fakeHost, MiB, onlyOn } from './support.js';

const suiteTests = suite('v8 engine dma lowering');
// V8 only: DmaLowering is the V8 engine's own; wasmtime lowers dma.read/write natively.
const test = onlyOn('v8', suiteTests);

/**
 * hostile.c: 0x44 dma.read(value, 16), 0x48 dma.read(0, value), 0x54 dma.write(value, 16),
 * 0x5c dma.write(0, value bytes of its heap)
 */
const A = { DMA_READ: 0x44n, DMA_READ_LEN: 0x48n, DMA_WRITE: 0x54n, DMA_WRITE_LEN: 0x5cn } as const;
const STATUS = 0x30n;
const FAILED_NOT_MAPPED = 0x100n;
const FAILED_ACCESS_DENIED = 0x102n;
const EDU = { src: 0x80n, dst: 0x88n, count: 0x90n, cmd: 0x98n, buffer: 0x40000n } as const;
const EDU_DMA_TIMER = 2;

interface Calls {
  readInto: number;
  writeFrom: number;
  read: number;
  write: number;
}

/** fakeHost with the one-copy methods over its 64 KiB of RAM, counting every call. */
function fastHost(): FakeHost & { calls: Calls } {
  const host = fakeHost();
  const calls: Calls = { readInto: 0, writeFrom: 0, read: 0, write: 0 };
  const { read, write } = host.dma;
  const inRam = (iova: bigint, len: number) => iova + BigInt(len) <= BigInt(host.ram.length);
  host.dma = {
    read(iova, len) {
      calls.read++;
      return read(iova, len);
    },
    write(iova, data) {
      calls.write++;
      write(iova, data);
    },
    readInto(iova: bigint, len: number, target: DmaTarget) {
      calls.readInto++;
      if (!inRam(iova, len)) throw new WitError('not-mapped');
      const at = target.alloc(len);
      new Uint8Array(target.memory(), at, len).set(
        host.ram.subarray(Number(iova)).subarray(0, len),
      );
      return at;
    },
    writeFrom(iova: bigint, memory: ArrayBuffer, offset: number, len: number) {
      calls.writeFrom++;
      if (!inRam(iova, len)) throw new WitError('access-denied');
      host.ram.set(new Uint8Array(memory, offset, len), Number(iova));
    },
  };
  return Object.assign(host, { calls });
}

async function instantiate(name: string, host: FakeHost, memoryBytes = 16 * MiB) {
  return (await compiledPlugin(name)).instantiate(host, { memoryBytes });
}

test('edu DMA moves bytes through readInto and writeFrom, not read and write', async () => {
  const host = fastHost();
  const dev = await instantiate('edu', host);
  host.ram.set([1, 2, 3, 4, 5, 6, 7, 8], 0x100);
  const run = (src: bigint, dst: bigint, cmd: bigint) => {
    dev.regionWrite(0, EDU.src, 8, src);
    dev.regionWrite(0, EDU.dst, 8, dst);
    dev.regionWrite(0, EDU.count, 8, 8n);
    dev.regionWrite(0, EDU.cmd, 4, cmd);
    dev.timer(EDU_DMA_TIMER);
  };
  run(0x100n, EDU.buffer, 1n); // RAM -> edu
  run(EDU.buffer, 0x200n, 3n); // edu -> RAM
  assert.equal([...host.ram.subarray(0x200, 0x208)], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(host.calls, { readInto: 1, writeFrom: 1, read: 0, write: 0 });
});

test('a host without the fast path still gets read and write', async () => {
  const host = fakeHost();
  const dev = await instantiate('hostile', host);
  host.ram.set([9, 8, 7], 0x10);
  dev.regionWrite(0, A.DMA_READ, 4, 0x10n);
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
  dev.regionWrite(0, A.DMA_READ, 4, 0x100000n); // outside the fake's RAM
  assert.is(dev.regionRead(0, STATUS, 4), FAILED_NOT_MAPPED);
  dev.regionWrite(0, A.DMA_WRITE, 4, 0x20n);
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
});

test('errors from readInto and writeFrom reach the plugin as their dma-error case', async () => {
  const host = fastHost();
  const dev = await instantiate('hostile', host);
  dev.regionWrite(0, A.DMA_READ, 4, 0x100000n);
  assert.is(dev.regionRead(0, STATUS, 4), FAILED_NOT_MAPPED);
  dev.regionWrite(0, A.DMA_WRITE, 4, 0x100000n);
  assert.is(dev.regionRead(0, STATUS, 4), FAILED_ACCESS_DENIED);
  dev.regionWrite(0, A.DMA_READ, 4, 0x10n);
  assert.is(dev.regionRead(0, STATUS, 4), 0n, 'the instance carries on');
});

test('1 MiB moves in one dma.read and one dma.write call, whole', async () => {
  const host = fastHost();
  const ram = new Uint8Array(2 * MiB);
  for (let i = 0; i < MiB; i++) ram[i] = (i * 31 + (i >> 10)) & 0xff;
  let seen = new Uint8Array(0);
  host.dma.readInto = (iova, len, target) => {
    const at = target.alloc(len);
    new Uint8Array(target.memory(), at, len).set(ram.subarray(Number(iova), Number(iova) + len));
    return at;
  };
  host.dma.writeFrom = (_iova, memory, offset, len) => {
    seen = new Uint8Array(memory.slice(offset, offset + len));
  };
  const dev = await instantiate('hostile', host);
  dev.regionWrite(0, A.DMA_READ_LEN, 4, BigInt(MiB)); // dma.read(0, 1 MiB), then freed
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
  dev.regionWrite(0, A.DMA_WRITE_LEN, 4, BigInt(MiB)); // dma.write(0, 1 MiB of its heap)
  assert.is(dev.regionRead(0, STATUS, 4), 0n);
  assert.is(seen.length, MiB);
  // the heap block it wrote from is where the freed read result was: the same bytes
  assert.ok(seen.every((b, i) => b === ram[i]));
});

test('a host import fault inside readInto traps as before', async () => {
  const host = fastHost();
  host.dma.readInto = () => {
    throw new TypeError('host bug');
  };
  const dev = await instantiate('hostile', host);
  let err: unknown;
  try {
    dev.regionWrite(0, A.DMA_READ, 4, 0x10n);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error && /dma\.read threw TypeError: host bug/.test(err.message));
});

/**
 * A core module exporting what the lowering binds to: `(memory (export "memory") 1)` and
 * `(func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)`.
 */
const LOWERABLE = new wasm.Module(
  new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // magic, version
    0x01,
    0x09,
    0x01,
    0x60,
    0x04,
    0x7f,
    0x7f,
    0x7f,
    0x7f,
    0x01,
    0x7f, // type: (i32 x4) -> i32
    0x03,
    0x02,
    0x01,
    0x00, // func 0: type 0
    0x05,
    0x03,
    0x01,
    0x00,
    0x01, // memory: min 1 page
    0x07,
    0x19,
    0x02, // exports: 2
    0x06,
    0x6d,
    0x65,
    0x6d,
    0x6f,
    0x72,
    0x79,
    0x02,
    0x00, // "memory" memory 0
    0x0c,
    ...new TextEncoder().encode('cabi_realloc'),
    0x00,
    0x00, // "cabi_realloc" func 0
    0x0a,
    0x06,
    0x01,
    0x04,
    0x00,
    0x41,
    0x00,
    0x0b, // code: i32.const 0, end
  ]),
);

test('the dma import of every supported 0.1.x version is lowered, and nothing else', () => {
  const host = fastHost();
  const theirs = {
    read: () => undefined,
    write: () => undefined,
    'map-window': () => undefined,
    'unmap-window': () => undefined,
  };
  for (const version of ['0.1.0', '0.1.1', '0.1.2']) {
    const lowering = new DmaLowering(host.dma, { noteHostFault: () => undefined });
    const name = `vfiobox:device/dma@${version}`;
    const out = lowering.imports(LOWERABLE, { [name]: theirs, other: { f: () => 0 } });
    const dma = out?.[name] as typeof theirs | undefined;
    assert.ok(dma, version);
    assert.is.not(dma.read, theirs.read, `${version}: read is the engine's`);
    assert.is.not(dma.write, theirs.write, `${version}: write is the engine's`);
    // 0.1.2's window functions stay the glue's lowering (they reach v8-imports.ts)
    assert.is(dma['map-window'], theirs['map-window'], `${version}: map-window is the glue's`);
    assert.is(dma['unmap-window'], theirs['unmap-window'], `${version}: unmap-window too`);
  }
  const lowering = new DmaLowering(host.dma, { noteHostFault: () => undefined });
  const foreign = { 'vfiobox:device/dma@0.2.0': theirs };
  assert.is(
    lowering.imports(LOWERABLE, foreign),
    foreign,
    'an unknown version is left to the glue',
  );
});

suiteTests.run();

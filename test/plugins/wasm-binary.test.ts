// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  capModuleMemory,
  encodeCustomSection,
  encodeLeb,
  readComponentNames,
  wasmKind,
} from '../../host/plugins/wasm-binary.js';
import { pluginBytes } from './support.js';

const test = suite('wasm binary');

const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

function section(id: number, content: number[]): number[] {
  return [id, ...encodeLeb(content.length), ...content];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...encodeLeb(bytes.length), ...bytes];
}

/** A module with one memory: imported ("env" "mem") or defined, with the given limits bytes. */
function moduleWith(limits: number[], imported: boolean): Uint8Array {
  const body = imported
    ? section(2, [1, ...name('env'), ...name('mem'), 0x02, ...limits])
    : section(5, [1, ...limits]);
  return Uint8Array.from([...PREAMBLE, ...body, ...section(0, name('keep-me'))]);
}

test('LEB128 encodes multi-byte values', () => {
  assert.equal([...encodeLeb(0)], [0]);
  assert.equal([...encodeLeb(624485)], [0xe5, 0x8e, 0x26]);
});

test('a memory without a maximum gets the cap as maximum', () => {
  const r = capModuleMemory(moduleWith([0x00, 2], false), 16 * 65536);
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.memories, [{ minPages: 2n, maxPages: undefined, imported: false }]);
  assert.equal([...r.bytes], [...moduleWith([0x01, 2, 16], false)]);
});

test('a maximum above the cap is lowered; one below it is kept', () => {
  const lowered = capModuleMemory(moduleWith([0x01, 1, 0x80, 0x02], false), 4 * 65536);
  assert.ok(
    lowered.ok && [...lowered.bytes].join() === [...moduleWith([0x01, 1, 4], false)].join(),
  );
  const kept = capModuleMemory(moduleWith([0x01, 1, 3], false), 4 * 65536);
  assert.ok(kept.ok && [...kept.bytes].join() === [...moduleWith([0x01, 1, 3], false)].join());
});

test('imported memories are capped too', () => {
  const r = capModuleMemory(moduleWith([0x00, 1], true), 8 * 65536);
  assert.ok(r.ok && [...r.bytes].join() === [...moduleWith([0x01, 1, 8], true)].join());
});

test('a minimum above the cap is refused with the numbers', () => {
  const r = capModuleMemory(moduleWith([0x00, 20], false), 16 * 65536);
  assert.not.ok(r.ok);
  if (r.ok) return;
  assert.match(r.reason, /1310720 bytes .* cap of 1048576 bytes/);
});

test('truncated or unknown input is a RangeError naming the offset', () => {
  const truncated = moduleWith([0x00, 2], false).subarray(0, 11);
  assert.throws(() => capModuleMemory(truncated, 65536), /malformed wasm at byte/);
  assert.throws(() => capModuleMemory(moduleWith([0x08, 1], false), 65536), /limits flags 0x8/);
  assert.throws(() => capModuleMemory(new Uint8Array(4), 65536), /not a core wasm module/);
});

test('the preamble tells core modules, components and other bytes apart', () => {
  assert.is(wasmKind(Uint8Array.from(PREAMBLE)), 'core-module');
  assert.is(wasmKind(pluginBytes('edu')), 'component');
  assert.is(wasmKind(new TextEncoder().encode('#!/bin/sh\necho hi\n')), 'not-wasm');
});

test("a component's top-level names and custom sections are read", () => {
  const bytes = pluginBytes('hostile'); // built against 0.1.2
  const names = readComponentNames(bytes);
  assert.ok(names.imports.includes('vfiobox:device/irq@0.1.2'));
  assert.equal(names.exports, ['vfiobox:device/device@0.1.2']);
  assert.ok(names.custom.some((c) => c.name === 'vfiobox:manifest'));
  const extra = encodeCustomSection('x', Uint8Array.of(1, 2, 3));
  const appended = new Uint8Array([...bytes, ...extra]);
  assert.equal(readComponentNames(appended).custom.at(-1), {
    name: 'x',
    data: Uint8Array.of(1, 2, 3),
  });
});

test.run();

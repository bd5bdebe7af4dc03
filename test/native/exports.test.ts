// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadNative } from '../../host/native/binding.js';
import { NATIVE_ABI_VERSION, NATIVE_KEYS } from '../../host/native/types.js';
import { native } from './fixture.js';

const test = suite('native exports');

test('the fake addon exports exactly the keys of NATIVE_KEYS', () => {
  // wasmtime is optional: only an addon built with the engine linked in has it
  const expected = Object.keys(NATIVE_KEYS).filter((k) => k !== 'wasmtime' || k in native);
  assert.equal(Object.keys(native).sort(), expected.sort());
});

test('abiVersion matches NATIVE_ABI_VERSION and sysLayer names the fake', () => {
  assert.is(native.abiVersion, NATIVE_ABI_VERSION);
  assert.is(native.sysLayer, 'fake');
});

test('loadNative returns the same addon object on every call', () => {
  assert.is(loadNative('fake'), native);
});

test('the classes are constructible and Device/Mapping are not exported', () => {
  assert.type(native.Iommu, 'function');
  assert.type(native.DmaBuffer, 'function');
  assert.type(native.EventFd, 'function');
  assert.not.ok('Device' in native);
  assert.not.ok('Mapping' in native);
});

test.run();

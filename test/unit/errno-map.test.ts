// SPDX-License-Identifier: MIT
// The WIT error enum <-> errno table (host/plugins/errno-map.ts) against the released WIT: every
// enum's cases, in order, with the errno its doc comment names ("Host errno: EFAULT.").
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SUPPORTED_ABI } from '../../host/plugins/abi.js';
import {
  errnoForWitError,
  isWitErrorCase,
  WINDOW_ERRNO,
  type WitErrorEnum,
  witErrorCases,
  witErrorForErrno,
} from '../../host/plugins/errno-map.js';

const test = suite('errno map');

const ENUMS: readonly WitErrorEnum[] = ['access-error', 'dma-error', 'window-error', 'irq-error'];

/** Linux's numbers, written out so the test does not check the table against itself. */
const LINUX: Readonly<Record<string, number>> = {
  EPERM: 1,
  EIO: 5,
  E2BIG: 7,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTSUP: 95,
};

/** Each case of `enum <name>` in types.wit with the errno its `///` docs name, in WIT order. */
function witEnum(typesWit: string, name: string): [string, string][] {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(typesWit)?.[1];
  if (body === undefined) throw new Error(`types.wit has no enum ${name}`);
  const cases: [string, string][] = [];
  let doc = '';
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('///')) doc += ` ${line.slice(3).trim()}`;
    const m = /^([a-z][a-z0-9-]*),$/.exec(line);
    if (m) {
      cases.push([m[1] as string, /Host errno: (E[A-Z0-9]+)/.exec(doc)?.[1] ?? '(none)']);
      doc = '';
    }
  }
  return cases;
}

const released = readFileSync(
  new URL(`../../../wit/vfiobox-device/${SUPPORTED_ABI.max}/types.wit`, import.meta.url),
  'utf8',
);

for (const name of ENUMS) {
  test(`${name}: the cases of the released WIT, in order, each to the errno its docs name`, () => {
    const wit = witEnum(released, name);
    assert.equal(
      witErrorCases(name),
      wit.map(([c]) => c),
    );
    for (const [c, errnoName] of wit) {
      assert.is(errnoForWitError(name, c), LINUX[errnoName], `${name}.${c} (${errnoName})`);
    }
  });
}

test('window-error (0.1.2): EFAULT, EPERM, EACCES, EINVAL, EBUSY, ENOSPC, ENOTSUP', () => {
  assert.equal(
    { ...WINDOW_ERRNO },
    {
      'not-mapped': 14,
      'not-granted': 1,
      'access-denied': 13,
      'invalid-range': 22,
      busy: 16,
      'too-many': 28,
      unsupported: 95,
    },
  );
});

test('a case is a case of its own enum only', () => {
  assert.ok(isWitErrorCase('window-error', 'too-many'));
  assert.not.ok(isWitErrorCase('dma-error', 'too-many'));
  assert.not.ok(isWitErrorCase('window-error', 'too-large'));
  assert.not.ok(isWitErrorCase('window-error', 'toString'), 'not an inherited property');
});

test('a string that is no case maps to EIO', () => {
  assert.is(errnoForWitError('window-error', 'bogus'), LINUX.EIO);
});

test('an errno maps back to the first case in WIT order with it, else the fallback', () => {
  assert.is(witErrorForErrno('window-error', LINUX.EBUSY as number, 'unsupported'), 'busy');
  assert.is(witErrorForErrno('window-error', LINUX.EFAULT as number, 'unsupported'), 'not-mapped');
  assert.is(witErrorForErrno('window-error', LINUX.EIO as number, 'unsupported'), 'unsupported');
});

test.run();

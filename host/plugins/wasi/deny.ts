// SPDX-License-Identifier: MIT
// What a plugin gets for a WASI capability vfiobox does not give: an interface object on which
// every name exists (so jco's glue can destructure it at instantiation, and a component that
// merely imports, say, wasi:http because its toolchain always does still runs) but every call,
// construction or static method throws PluginError kind 'denied'. The engine's error boundary
// turns that into a trap, which fences the device and names the call in the message.

import { PluginError } from '../../errors.js';

/** `getRandomBytes` -> `get-random-bytes`: jco camel-cases WIT names; messages use WIT's. */
export function witName(jsName: string): string {
  return jsName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/^-/, '');
}

export function deniedError(plugin: string, what: string, why: string): PluginError {
  return new PluginError(plugin, what, 'denied', `${what} is not available to plugins: ${why}`);
}

/**
 * A value that throws on call and on `new`, and whose every (string) property is another such
 * value: it stands for a function, or for a resource class with its static functions. Its
 * `prototype` is a real object, because the glue runs `instanceof` and `Object.create` on
 * resource classes; no instance can exist, since nothing hands one out.
 */
export function deniedValue(plugin: string, what: string, why: string): unknown {
  const target = function denied() {
    throw deniedError(plugin, what, why);
  };
  const children = new Map<string, unknown>();
  return new Proxy(target, {
    apply() {
      throw deniedError(plugin, what, why);
    },
    construct() {
      throw deniedError(plugin, what, why);
    },
    get(fn, prop, receiver) {
      if (typeof prop === 'symbol' || prop === 'prototype') return Reflect.get(fn, prop, receiver);
      let child = children.get(prop);
      if (child === undefined) {
        child = deniedValue(plugin, `${what}.${witName(prop)}`, why);
        children.set(prop, child);
      }
      return child;
    },
  });
}

/** A whole WASI interface (`wasi:sockets/tcp`) whose every member is denied. */
export function deniedInterface(plugin: string, iface: string, why: string): object {
  const members = new Map<string, unknown>();
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop === 'symbol') return undefined;
      let member = members.get(prop);
      if (member === undefined) {
        member = deniedValue(plugin, `${iface}#${witName(prop)}`, why);
        members.set(prop, member);
      }
      return member;
    },
  });
}

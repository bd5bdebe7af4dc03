// SPDX-License-Identifier: MIT
// The part of StarlingMonkey's Web API the device uses (lib "es2022" has no DOM types).
declare const console: { log(...data: unknown[]): void; warn(...data: unknown[]): void };

#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Embeds a plugin manifest into a component as a top-level custom section `vfiobox:manifest`
// (host/plugins/manifest.ts reads it):
//
//   node scripts/embed-manifest.mjs <in.wasm> <manifest.json> <out.wasm>
//
// Custom sections (id 0) may appear anywhere at a component's top level (component-model
// Binary.md: "custom sections are allowed ... between any sections"), so appending one keeps the
// component valid; an earlier `vfiobox:manifest` section is dropped first, so running this again
// replaces rather than stacks. The JSON is checked for syntax and a name here; the host
// validates every field when it loads the plugin. Standalone (no build step needed before it).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const SECTION = 'vfiobox:manifest';
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

function fail(message) {
  process.stderr.write(`embed-manifest: ${message}\n`);
  process.exit(1);
}

function leb(value) {
  const out = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function readLeb(bytes, pos) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[pos + i];
    if (byte === undefined) fail(`truncated LEB128 at byte ${pos}`);
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, pos + i + 1];
  }
  return fail(`LEB128 too long at byte ${pos}`);
}

/** The component's sections, without any earlier vfiobox:manifest custom section. */
function sectionsWithoutManifest(bytes) {
  const kept = [];
  let pos = 8;
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos];
    const [size, content] = readLeb(bytes, pos + 1);
    const end = content + size;
    if (end > bytes.length) fail(`section at byte ${start} runs past the end`);
    let isManifest = false;
    if (id === 0) {
      const [nameLen, nameStart] = readLeb(bytes, content);
      const name = new TextDecoder().decode(bytes.subarray(nameStart, nameStart + nameLen));
      isManifest = name === SECTION;
    }
    if (!isManifest) kept.push(bytes.subarray(start, end));
    pos = end;
  }
  return kept;
}

const [input, manifestPath, output] = process.argv.slice(2);
if (!input || !manifestPath || !output) {
  fail('usage: node scripts/embed-manifest.mjs <in.wasm> <manifest.json> <out.wasm>');
}
const bytes = new Uint8Array(readFileSync(input));
if (!COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b)) {
  fail(`${input} is not a WebAssembly component (a core module needs wasm-tools component new)`);
}
const text = readFileSync(manifestPath, 'utf8');
let manifest;
try {
  manifest = JSON.parse(text);
} catch (err) {
  fail(`${manifestPath}: not valid JSON: ${err.message}`);
}
if (typeof manifest?.name !== 'string') fail(`${manifestPath}: no "name" string`);

const data = new TextEncoder().encode(JSON.stringify(manifest));
const name = new TextEncoder().encode(SECTION);
const content = [...leb(name.length), ...name, ...data];
const section = Uint8Array.from([0, ...leb(content.length), ...content]);
const parts = [bytes.subarray(0, 8), ...sectionsWithoutManifest(bytes), section];
const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
let at = 0;
for (const p of parts) {
  out.set(p, at);
  at += p.length;
}
const tmp = `${output}.tmp-${process.pid}`;
writeFileSync(tmp, out);
renameSync(tmp, output);

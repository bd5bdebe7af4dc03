#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// DMA windows without a VM: serve the csum plugin (plugins/c/csum) in this process on each
// engine, map guest memory as a sealed memfd (as QEMU's memory-backend-memfd does), and have
// the plugin checksum the same 64 KiB buffer again and again. On wasmtime it maps a DMA window
// over the buffer once and then reads guest memory with plain loads; on v8 (no windows) it
// copies the buffer with dma.read each time. Same results; the counters say which way it went.
//   node examples/csum-window/client.mjs            (after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dma, startDevice, VfioUserClient } from '../../build/host/index.js';

// plugins/c/csum/src/csum.c
const R = { addrLo: 0x08, addrHi: 0x0c, len: 0x10, go: 0x14, result: 0x18, status: 0x1c };
const COUNTERS = { hits: 0x20, maps: 0x24, copies: 0x28 };
const IOVA = 0x40000000;
const LEN = 65536;
const COMMANDS = 200;
const DMA_READ_WRITE = 0x3; // vfio-user DMA_MAP flags: read | write

function fnv1a(bytes) {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

async function run(engine) {
  const dir = mkdtempSync(join(tmpdir(), 'csum-example-'));
  const socketPath = join(dir, 'csum.sock');
  const device = await startDevice({
    name: 'csum',
    pluginPath: new URL('../../build/plugins/csum.wasm', import.meta.url).pathname,
    socketPath,
    engine,
  });
  const client = await VfioUserClient.connect(socketPath);
  const mem = dma.memfd(1 << 20);
  try {
    await client.negotiate();
    mem.seal(); // F_SEAL_SHRINK | F_SEAL_GROW: the server may then map it into the plugin
    await client.dmaMap({
      iova: BigInt(IOVA),
      sizeBytes: 1 << 20,
      flags: DMA_READ_WRITE,
      fd: mem.fd,
    });
    const data = new Uint8Array(LEN);
    let bad = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < COMMANDS; i++) {
      data[i % LEN] ^= 0x5a; // the guest changes its buffer between commands
      mem.write(0x100, data);
      await client.write32(0, R.addrLo, IOVA + 0x100);
      await client.write32(0, R.addrHi, 0);
      await client.write32(0, R.len, LEN);
      await client.write32(0, R.go, 1);
      const status = await client.read32(0, R.status);
      const result = await client.read32(0, R.result);
      if (status !== 0 || result !== fnv1a(data)) bad++;
    }
    const us = Number(process.hrtime.bigint() - t0) / 1e3 / COMMANDS;
    const c = {};
    for (const [name, reg] of Object.entries(COUNTERS)) c[name] = await client.read32(0, reg);
    console.log(
      `${engine.padEnd(8)} ${COMMANDS - bad}/${COMMANDS} checksums right, ` +
        `window maps ${c.maps}, window hits ${c.hits}, dma.read copies ${c.copies} ` +
        `(${us.toFixed(0)} us per command, info only)`,
    );
    if (bad) process.exitCode = 1;
  } finally {
    client.close();
    await device.close();
    mem.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await run('wasmtime');
await run('v8');

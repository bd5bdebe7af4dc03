// SPDX-License-Identifier: MIT
// The TS half of the VFIO benchmark (bench/README.md): the same measurements as
// bench/c/vfio_bench.c, through vfiobox's public TS API, printed as the same JSON lines.
//
//   node build/bench/lab/vfio-bench.js --bdf 0000:00:04.0 --backend legacy|iommufd
//        [--n4k N] [--n2m N] [--nbar N] [--batch K] [--batch2m K2]
//        [--ops dma-4k,dma-2m,bar-read,batch,batch2m,native]
//
//   impl "ts"       dma-4k / dma-2m: N x (iommu.dmaMap, iommu.dmaUnmap); bar-read: N x read32(0)
//   impl "ts-batch" dma-4k: rounds of (dmaMapBatch of K 4 KiB pages at consecutive IOVAs, one
//                   dmaUnmap of the whole range); the C twin is impl "c-batch"
//                   dma-2m (ops "batch2m"): the same with K2 maps of 2 MiB
//   impl "native-backend" / "native-table" (op "native" in --ops) dma-4k / dma-2m: the same N
//                   pairs in ONE native call (benchDmaLoop, timed inside C++): the backend's
//                   ioctls alone / the whole dmaMap+dmaUnmap path; no JS between the ioctls
//   impl "native-table-x1": N JS calls of benchDmaLoop(n = 1, 'table'): one crossing per pair
// Runs inside the lab guest (bench/lab/run-all.sh); exit 1 with a message on any failure.

import type { Iommu, VfioDevice } from '../../host/index.js';
import { DmaBuffer, openDevice } from '../../host/index.js';
import { native } from '../../host/vfio/native.js';

const KIB = 1024;
const MIB = 1024 * KIB;
// Same IOVAs as the C program.
const IOVA_4K = 0x100000n;
const IOVA_2M = 0x200000n;
const IOVA_BATCH = 0x1000000n;

interface Args {
  bdf: string;
  backend: 'legacy' | 'iommufd';
  n4k: number;
  n2m: number;
  nbar: number;
  batch: number;
  batch2m: number;
  ops: Set<string>;
}

function usage(msg: string): never {
  process.stderr.write(
    `vfio-bench: ${msg}\nusage: vfio-bench --bdf BDF --backend legacy|iommufd [--n4k N] [--n2m N] [--nbar N] [--batch K] [--batch2m K2] [--ops dma-4k,dma-2m,bar-read,batch,batch2m,native]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const out: Args = {
    bdf: '',
    backend: 'legacy',
    n4k: 2000,
    n2m: 200,
    nbar: 200000,
    batch: 64,
    batch2m: 8,
    ops: new Set(['dma-4k', 'dma-2m', 'bar-read', 'batch', 'batch2m', 'native']),
  };
  let backendSeen = false;
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const val = argv[i + 1];
    if (val === undefined) usage(`missing value for ${key}`);
    const num = (): number => {
      const n = Number(val);
      if (!Number.isSafeInteger(n) || n <= 0) usage(`${key} needs a positive integer`);
      return n;
    };
    switch (key) {
      case '--bdf':
        out.bdf = val;
        break;
      case '--backend':
        if (val !== 'legacy' && val !== 'iommufd') usage(`unknown backend ${val}`);
        out.backend = val;
        backendSeen = true;
        break;
      case '--n4k':
        out.n4k = num();
        break;
      case '--n2m':
        out.n2m = num();
        break;
      case '--nbar':
        out.nbar = num();
        break;
      case '--batch':
        out.batch = num();
        break;
      case '--batch2m':
        out.batch2m = num();
        break;
      case '--ops':
        out.ops = new Set(val.split(','));
        break;
      default:
        usage(`unknown option ${key}`);
    }
  }
  if (!out.bdf || !backendSeen) usage('--bdf and --backend are required');
  return out;
}

function emit(args: Args, impl: string, op: string, n: number, ns: bigint, batch?: number): void {
  const rec: Record<string, unknown> = {
    impl,
    backend: args.backend,
    op,
    n,
    ns_per_op: Math.round((Number(ns) / n) * 10) / 10,
  };
  if (batch !== undefined) rec.batch = batch;
  process.stdout.write(`${JSON.stringify(rec)}\n`);
}

function benchDma(
  args: Args,
  iommu: Iommu,
  op: string,
  iova: bigint,
  size: number,
  n: number,
): void {
  const buf = new DmaBuffer(size);
  try {
    buf.fill(0, size, 0x5a); // fault the pages in, as the C program's memset does
    const warm = Math.floor(n / 10) + 1;
    for (let i = 0; i < warm; i++) {
      iommu.dmaMap(buf, iova, size);
      iommu.dmaUnmap(iova, size);
    }
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      iommu.dmaMap(buf, iova, size);
      iommu.dmaUnmap(iova, size);
    }
    emit(args, 'ts', op, n, process.hrtime.bigint() - t0);
    if (args.ops.has('native')) {
      const bench = native().benchDmaLoop;
      for (const mode of ['backend', 'table'] as const) {
        bench(iommu.native, buf.native, 0, iova, size, warm, mode);
        const ns = bench(iommu.native, buf.native, 0, iova, size, n, mode);
        emit(args, `native-${mode}`, op, n, BigInt(Math.round(ns)));
      }
      // one native call per (map, unmap) pair: JS runs between the pairs again
      for (let i = 0; i < warm; i++) bench(iommu.native, buf.native, 0, iova, size, 1, 'table');
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) bench(iommu.native, buf.native, 0, iova, size, 1, 'table');
      emit(args, 'native-table-x1', op, n, process.hrtime.bigint() - t1);
    }
  } finally {
    buf.close();
  }
}

/** rounds of (dmaMapBatch of k chunks at consecutive IOVAs, one dmaUnmap of the range) */
function benchBatch(
  args: Args,
  iommu: Iommu,
  op: string,
  chunk: number,
  k: number,
  n: number,
): void {
  const rounds = Math.max(1, Math.floor(n / k));
  const buf = new DmaBuffer(k * chunk);
  try {
    buf.fill(0, k * chunk, 0x5a);
    // the typed form of dmaMapBatch: the addon reads both lists in place
    const iovas = new BigUint64Array(k);
    const offsets = new BigUint64Array(k);
    for (let i = 0; i < k; i++) {
      iovas[i] = IOVA_BATCH + BigInt(i * chunk);
      offsets[i] = BigInt(i * chunk);
    }
    const span = k * chunk;
    for (let w = 0; w < Math.floor(rounds / 10) + 1; w++) {
      iommu.dmaMapBatch(buf, iovas, offsets, chunk);
      iommu.dmaUnmap(IOVA_BATCH, span);
    }
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) {
      iommu.dmaMapBatch(buf, iovas, offsets, chunk);
      iommu.dmaUnmap(IOVA_BATCH, span);
    }
    emit(args, 'ts-batch', op, rounds * k, process.hrtime.bigint() - t0, k);
  } finally {
    buf.close();
  }
}

function benchBar(args: Args, device: VfioDevice): void {
  const m = device.mmap(0);
  try {
    const first = m.read32(0);
    if (first === 0xffffffff || (first & 0xffff) !== 0x00ed) {
      throw new Error(`BAR0 ident reads 0x${first.toString(16)}, not an edu`);
    }
    const n = args.nbar;
    let acc = 0;
    for (let i = 0; i < Math.floor(n / 10) + 1; i++) acc ^= m.read32(0);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) acc ^= m.read32(0);
    const dt = process.hrtime.bigint() - t0;
    if (acc === 0xdeadbeef) process.stderr.write(''); // keeps acc alive
    emit(args, 'ts', 'bar-read', n, dt);
  } finally {
    m.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // openDevice is async (sysfs discovery); everything timed below is synchronous.
  const { iommu, device } = await openDevice(args.bdf, { backend: args.backend });
  try {
    if (args.ops.has('dma-4k')) benchDma(args, iommu, 'dma-4k', IOVA_4K, 4 * KIB, args.n4k);
    if (args.ops.has('batch')) benchBatch(args, iommu, 'dma-4k', 4 * KIB, args.batch, args.n4k);
    if (args.ops.has('batch2m')) {
      benchBatch(args, iommu, 'dma-2m', 2 * MIB, args.batch2m, args.n2m);
    }
    if (args.ops.has('dma-2m')) benchDma(args, iommu, 'dma-2m', IOVA_2M, 2 * MIB, args.n2m);
    if (args.ops.has('bar-read')) benchBar(args, device);
  } finally {
    device.close();
    iommu.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `vfio-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});

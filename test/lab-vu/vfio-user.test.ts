// SPDX-License-Identifier: MIT
// lab-vu: `vfiobox serve` against a real VMM. QEMU 11 (Debian sid, in a chroot) boots sid's
// kernel under TCG with five vfio-user-pci devices: the edu, serial16550, scratchpad (a memory-backed
// BAR area QEMU maps from the region fd) and csum (DMA windows) plugins, and the hostile fixture
// as hostile-window (a DMA window over guest RAM), each served by its own `vfiobox serve`
// process. The guest's vu-check (test/lab-vu/guest/) drives them
// through the guest kernel (sysfs BAR mmap, uio_pci_generic INTx, the 8250 tty) and reports one
// line per check; the server's --log-json events and QEMU's vfio_user_* trace are checked here.
// Needs root (chroot, mount namespace); test/lab-vu/setup.sh prepares the cache on first use.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type BootResult,
  bootGuest,
  connectStream,
  ROOT,
  readTrace,
  runBootScript,
  type ServeEvent,
  type StreamPeer,
  startServe,
  summariseTrace,
} from './lab.js';

const GUEST_LINE = 'hello from the guest\n';
const HOST_LINE = 'hello from the host\n';
const DMA_MAP_WRITE = 0x2; // vfio-user spec, VFIO_USER_DMA_MAP flags bit 1
/** q35's 32-bit PCI hole starts at 2 GiB or above; the guest's RAM (boot.sh) is far below. */
const PCI_HOLE = 0x8000_0000n;

interface Fixture {
  boot: BootResult;
  trace: string;
  eduEvents: ServeEvent[];
  serialEvents: ServeEvent[];
  padEvents: ServeEvent[];
  windowEvents: ServeEvent[];
  csumEvents: ServeEvent[];
  eduExit: number | null;
  serialExit: number | null;
  streamText: string;
  /** socket files still present after both serve processes exited */
  socketsLeft: string[];
}

let fixture: Promise<Fixture> | undefined;
const fixtureDir = mkdtempSync(join(tmpdir(), 'vfiobox-lab-vu-'));

/** One guest boot with both devices, shared by the tests below (each boot is 4-5 s of TCG). */
function served(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = fixtureDir;
    const eduSock = join(dir, 'edu.sock');
    const serialSock = join(dir, 'serial.sock');
    const padSock = join(dir, 'pad.sock');
    const windowSock = join(dir, 'window.sock');
    const csumSock = join(dir, 'csum.sock');
    const streamSock = join(dir, 'uart.sock');
    // edu on wasmtime (its BAR accesses answered by the native server: the direct route),
    // serial16550 and scratchpad on v8: both engines face the same VMM in one boot
    const edu = await startServe('edu', eduSock, ['--engine', 'wasmtime']);
    let serial: Awaited<ReturnType<typeof startServe>> | undefined;
    let pad: Awaited<ReturnType<typeof startServe>> | undefined;
    let win: Awaited<ReturnType<typeof startServe>> | undefined;
    let csum: Awaited<ReturnType<typeof startServe>> | undefined;
    let peer: StreamPeer | undefined;
    try {
      serial = await startServe('serial16550', serialSock, ['--stream', `unix:${streamSock}`]);
      pad = await startServe('scratchpad', padSock);
      // DMA windows need wasmtime (and QEMU's memory-backend-memfd, sealed by default)
      win = await startServe('hostile-window', windowSock, ['--engine', 'wasmtime']);
      csum = await startServe('csum', csumSock, ['--engine', 'wasmtime']);
      peer = await connectStream(streamSock, GUEST_LINE, HOST_LINE);
      const boot = await bootGuest(
        [eduSock, serialSock, padSock, windowSock, csumSock],
        join(dir, 'out'),
      );
      const streamText = peer.received();
      peer.close();
      const eduExit = await edu.stop();
      const serialExit = await serial.stop();
      await pad.stop();
      await win.stop();
      await csum.stop();
      const socketsLeft = [eduSock, serialSock, padSock, windowSock, csumSock].filter((p) =>
        existsSync(p),
      );
      return {
        boot,
        trace: readTrace(join(dir, 'out')),
        eduEvents: edu.events,
        serialEvents: serial.events,
        padEvents: pad.events,
        windowEvents: win.events,
        csumEvents: csum.events,
        eduExit,
        serialExit,
        streamText,
        socketsLeft,
      };
    } finally {
      peer?.close();
      await edu.stop();
      await serial?.stop();
      await pad?.stop();
      await win?.stop();
      await csum?.stop();
    }
  })();
  return fixture;
}

function expectOk(boot: BootResult, name: string): string {
  const c = boot.checks.get(name);
  if (!c) {
    const tail = boot.stderr.split('\n').slice(-15).join('\n');
    assert.unreachable(
      `guest reported no '${name}' (boot.sh exit ${boot.code}):\n${boot.lines.join('\n')}\n${tail}`,
    );
  } else if (!c.ok) assert.unreachable(`guest check ${name} failed: ${c.detail}`);
  return c?.detail ?? '';
}

const t = suite('vfiobox serve under QEMU vfio-user-pci');

t('the lab QEMU offers -device vfio-user-pci with a UNIX socket property', async () => {
  const r = await runBootScript(['--check-qemu']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /QEMU emulator version (\d+)\./);
  const major = Number(/QEMU emulator version (\d+)\./.exec(r.stdout)?.[1]);
  assert.ok(major >= 10, `vfio-user-pci needs QEMU >= 10.1, got ${major}`);
  assert.match(r.stdout, /socket=<SocketAddress>/);
});

t('a guest without vfio-user devices boots and reports on the results channel', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfiobox-lab-vu-'));
  try {
    const boot = await bootGuest([], dir);
    assert.is(boot.code, 0, boot.stderr);
    assert.match(expectOk(boot, 'boot'), /^kernel \S+/);
    assert.match(expectOk(boot, 'pci'), /, 0 edu, 0 serial16550, 0 scratchpad, 0 hostile, 0 csum$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('the guest kernel enumerates the five served devices', async () => {
  const { boot } = await served();
  assert.match(expectOk(boot, 'pci'), /, 1 edu, 1 serial16550, 1 scratchpad, 1 hostile, 1 csum$/);
  assert.match(expectOk(boot, 'csum0.ids'), /^1234:4353 at /);
  assert.match(expectOk(boot, 'window0.ids'), /^1234:bad0 at /);
  assert.match(expectOk(boot, 'scratchpad0.ids'), /^1234:5350 at /);
  assert.match(expectOk(boot, 'edu0.ids'), /^1234:11e8 at /);
  assert.match(expectOk(boot, 'serial0.ids'), /^1b36:0002 at /);
});

t('the guest reads edu ident and liveness, and computes 5! through BAR0', async () => {
  const { boot } = await served();
  assert.match(expectOk(boot, 'edu0.decode'), /-> 0x[0-9a-f]{4}$/);
  assert.is(expectOk(boot, 'edu0.ident'), '0x010000ed');
  assert.is(expectOk(boot, 'edu0.liveness'), 'wrote 0x12345678 read 0xedcba987');
  assert.match(expectOk(boot, 'edu0.factorial'), /^5! = 120 /);
});

t('an edu interrupt reaches uio_pci_generic as INTx, and again after the unmask', async () => {
  const { boot } = await served();
  assert.match(expectOk(boot, 'edu0.uio-bind'), /bound as uio\d+/);
  assert.match(expectOk(boot, 'edu0.irq'), /arrived via INTx/);
  assert.match(expectOk(boot, 'edu0.irq-again'), /count \d+ -> \d+/);
  expectOk(boot, 'edu0.intx-status');
});

t("the guest's line reaches the serial16550 stream socket", async () => {
  const { boot, streamText } = await served();
  expectOk(boot, 'serial0.tty');
  expectOk(boot, 'serial0.tx');
  assert.ok(streamText.includes(GUEST_LINE), `stream received ${JSON.stringify(streamText)}`);
});

t("the host's line reaches the guest through the serial16550", async () => {
  const { boot } = await served();
  assert.is(expectOk(boot, 'serial0.rx'), HOST_LINE.trimEnd());
});

t("QEMU maps scratchpad's memory area: the guest and the plugin share its page", async () => {
  const { boot, padEvents } = await served();
  assert.is(expectOk(boot, 'scratchpad0.ident'), '0x53504144');
  assert.match(expectOk(boot, 'scratchpad0.guest-to-plugin'), /^SUM (0x[0-9a-f]{8}), page \1$/);
  assert.match(expectOk(boot, 'scratchpad0.plugin-to-guest'), /\[0\] 0x5a \[4095\] 0x59$/);
  assert.is(expectOk(boot, 'scratchpad0.trapped'), 'BAR2+0x1010 = 0x7a001010');
  // The guest touched the page 8192 times; trapped, each would be a REGION_READ/WRITE of
  // region 2. Mapped (sparse mmap from the region fd), only the read past the page is one.
  const stats = padEvents.filter((e) => e.event === 'stats');
  const record = (stats[0]?.stats ?? stats[0]) as
    | { regionAccesses?: Record<string, number> }
    | undefined;
  const bar2 = record?.regionAccesses?.['2'] ?? 0;
  assert.ok(bar2 >= 1 && bar2 <= 4, `region 2 accesses over the socket: ${bar2}`);
});

t('every guest check passed and the guest powered off', async () => {
  const { boot } = await served();
  const failed = [...boot.checks].filter(([, c]) => !c.ok).map(([n, c]) => `${n}: ${c.detail}`);
  assert.equal(failed, []);
  assert.is(boot.code, 0, boot.stderr);
});

t('guest RAM arrives at vfiobox as file descriptors (shared memfd)', async () => {
  const { eduEvents, serialEvents } = await served();
  for (const events of [eduEvents, serialEvents]) {
    assert.ok(
      events.some((e) => e.event === 'connect'),
      'no connect event',
    );
    const maps = events.filter((e) => e.event === 'dma-map');
    assert.ok(maps.length >= 2, `expected several dma-map events, got ${maps.length}`);
    // RAM is read-write and memfd-backed; QEMU maps the BIOS ROM read-only without an fd
    // (shared lab README, section 2), so only the writable maps must carry one.
    // Another device's mmapped BAR area (scratchpad's BAR2 page, in the PCI hole) is mapped
    // too, for peer-to-peer DMA, and QEMU has no fd for it: only RAM (below the hole) counts.
    const writable = maps.filter(
      (e) => (Number(e.flags) & DMA_MAP_WRITE) !== 0 && BigInt(String(e.iova)) < PCI_HOLE,
    );
    assert.ok(writable.length > 0, `no writable map among ${JSON.stringify(maps.slice(0, 3))}`);
    const withoutFd = writable.filter((e) => e.hasFd !== true);
    assert.equal(withoutFd, [], 'every writable DMA_MAP (guest RAM) carries an fd');
  }
});

t('the trace reader sees two DMA_MAPs in flight in a recorded QEMU 11.1.3 trace', () => {
  const recorded = readFileSync(
    join(ROOT, 'test/lab-vu/fixtures/qemu-11.1.3-dma-map.trace'),
    'utf8',
  );
  const s = summariseTrace(recorded);
  assert.is(s.dmaMaps, 2);
  assert.is(s.maxMapsInFlight, 2);
  assert.is(s.replies.get(2), 2);
  // The same maps answered one by one: never more than one in flight.
  const lines = recorded.split('\n');
  const reply1 = lines.findIndex((l) => / id 0x1 cmd 0x2 /.test(l));
  const [moved] = lines.splice(reply1, 1);
  lines.splice(
    lines.findIndex((l) => l.includes('iova 0xfffc0000')),
    0,
    moved ?? '',
  );
  assert.is(summariseTrace(lines.join('\n')).maxMapsInFlight, 1);
});

t('QEMU pipelines DMA_MAPs: a map is sent before the previous reply', async () => {
  const { trace } = await served();
  const s = summariseTrace(trace);
  assert.ok(s.dmaMaps >= 2, `trace shows ${s.dmaMaps} vfio_user_dma_map events`);
  assert.ok(
    s.maxMapsInFlight >= 2,
    `at most ${s.maxMapsInFlight} DMA_MAP in flight at once (${s.dmaMaps} maps)`,
  );
  assert.ok((s.replies.get(2) ?? 0) >= s.dmaMaps, 'every DMA_MAP got its reply');
});

t(
  'serve exits 0 on SIGTERM, removes its socket and reports the DMA maps in its stats',
  async () => {
    const { eduExit, serialExit, eduEvents, socketsLeft } = await served();
    assert.is(eduExit, 0);
    assert.is(serialExit, 0);
    assert.equal(socketsLeft, []);
    const stats = eduEvents.filter((e) => e.event === 'stats');
    assert.is(stats.length, 1, 'one final stats event');
    // The stats record is either spread into the event or nested under `stats`.
    const record = (stats[0]?.stats ?? stats[0]) as
      | { requests?: Record<string, number> }
      | undefined;
    const requests = record?.requests ?? {};
    assert.ok((requests.DMA_MAP ?? 0) >= 2, `stats.requests: ${JSON.stringify(requests)}`);
  },
);

t("edu ran on wasmtime: the guest's BAR accesses reached the plugin without JS", async () => {
  const { eduEvents, serialEvents } = await served();
  const loaded = eduEvents.find((e) => e.event === 'loaded');
  assert.is(loaded?.engine, 'wasmtime', JSON.stringify(loaded));
  assert.is(serialEvents.find((e) => e.event === 'loaded')?.engine, 'v8');
  const final = eduEvents.filter((e) => e.event === 'stats').at(-1);
  const record = (final?.stats ?? final) as { directAccesses?: number } | undefined;
  // the guest's driver check reads ident, liveness and factorial through BAR0 (edu checks above)
  assert.ok((record?.directAccesses ?? 0) > 10, `directAccesses: ${record?.directAccesses}`);
});

t(
  "a DMA window over guest RAM: the plugin's plain loads and stores reach a page of the guest",
  async () => {
    const { boot, windowEvents } = await served();
    assert.match(expectOk(boot, 'window0.page'), /^guest page at PA 0x[0-9a-f]+$/);
    // QEMU's memory-backend-memfd seals its memfd: the server could map it over the plugin
    assert.match(expectOk(boot, 'window0.map'), /status 0x0$/);
    assert.match(expectOk(boot, 'window0.plugin-reads-guest'), /0x600df00d after the guest/);
    assert.match(expectOk(boot, 'window0.plugin-writes-guest'), /: 0x5eed1234$/);
    assert.match(expectOk(boot, 'window0.unmap'), /status 0x0, plugin then loads 0x00000000/);
    assert.is(windowEvents.find((e) => e.event === 'loaded')?.engine, 'wasmtime');
    const final = windowEvents.filter((e) => e.event === 'stats').at(-1);
    const record = (final?.stats ?? final) as { windowsMapped?: number; windowsRefused?: number };
    assert.is(record?.windowsMapped, 1, JSON.stringify(record));
    assert.is(record?.windowsRefused, 0);
  },
);

t(
  'csum in a real guest: 20 checksums of a buffer the guest keeps changing, through one DMA window',
  async () => {
    const { boot, csumEvents } = await served();
    assert.match(expectOk(boot, 'csum0.buffer'), /^4000 bytes at PA 0x[0-9a-f]+$/);
    assert.match(expectOk(boot, 'csum0.checksums'), /^20 of 20 commands right/);
    // the first command maps the window, the other 19 find it still there: no copy at all
    assert.is(expectOk(boot, 'csum0.window'), 'maps 1 hits 19 copies 0');
    const final = csumEvents.filter((e) => e.event === 'stats').at(-1);
    const record = (final?.stats ?? final) as { windowsMapped?: number; directDma?: number };
    assert.is(record?.windowsMapped, 1, JSON.stringify(record));
    assert.is(record?.directDma, 0);
  },
);

t.after(async () => {
  await fixture?.catch(() => undefined);
  rmSync(fixtureDir, { recursive: true, force: true });
});

t.run();

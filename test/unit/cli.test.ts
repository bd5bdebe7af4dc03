// SPDX-License-Identifier: MIT
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closest, formatError, formatTable } from '../../host/cli/format.js';
import { type CliIo, COMMANDS, main, VERSION } from '../../host/cli/main.js';
import { ConfigError, VfioError } from '../../host/errors.js';
import type { SysfsWriter } from '../../host/sysfs/bind.js';
import { listPciDevices, NOIOMMU_HINT } from '../../host/sysfs/pci.js';
import { createFakeSysfs, type FakeSysfs, sampleMachine } from '../helpers/fake-sysfs.js';

const test = suite('cli');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI against `tree` (or no tree) with captured output. */
async function run(
  argv: string[],
  tree?: FakeSysfs,
  extra: { isTTY?: boolean; writer?: SysfsWriter } = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    isTTY: extra.isTTY ?? false,
    sysfs: tree
      ? { root: tree.root, writer: extra.writer ?? tree.writer(), verifyTimeoutMs: 40 }
      : undefined,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

async function withTree(tree: FakeSysfs, fn: (t: FakeSysfs) => Promise<void>): Promise<void> {
  try {
    await fn(tree);
  } finally {
    tree.cleanup();
  }
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** An expected error: exactly `vfiobox: ...` and maybe `hint: ...`, no stack. */
function assertOneLineError(r: Run, code: number, message: string, hint?: string): void {
  assert.is(r.code, code, r.stderr);
  const expected =
    hint === undefined ? [`vfiobox: ${message}`] : [`vfiobox: ${message}`, `hint: ${hint}`];
  assert.equal(lines(r.stderr), expected);
  assert.not.match(r.stderr, /\n\s+at /);
}

test('--help lists every registered command and exits 0', async () => {
  const r = await run(['--help']);
  assert.is(r.code, 0);
  assert.is(r.stderr, '');
  assert.match(r.stdout, 'usage: vfiobox <command> [options]');
  for (const c of COMMANDS) {
    assert.ok(
      lines(r.stdout).some((l) => l.startsWith(`  ${c.name} `) && l.endsWith(`  ${c.summary}`)),
      c.name,
    );
  }
  assert.equal((await run(['-h'])).stdout, r.stdout);
  assert.equal((await run(['help'])).stdout, r.stdout);
});

test('no arguments prints the help on stderr and exits 2', async () => {
  const r = await run([]);
  assert.is(r.code, 2);
  assert.is(r.stdout, '');
  assert.match(r.stderr, 'usage: vfiobox <command>');
});

test('<command> --help and help <command> print that command usage', async () => {
  for (const c of COMMANDS) {
    assert.ok(c.usage.startsWith(`usage: vfiobox ${c.name}`), c.name);
    for (const argv of [
      [c.name, '--help'],
      [c.name, '-h'],
      ['help', c.name],
      [c.name, 'x', '--help'],
    ]) {
      const r = await run(argv);
      assert.is(r.code, 0);
      assert.is(r.stdout, c.usage);
    }
  }
});

test('command names are unique and every command has a summary', () => {
  const names = COMMANDS.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
  for (const c of COMMANDS) assert.ok(c.summary.length > 0 && !c.summary.includes('\n'), c.name);
});

test('--version prints the package.json version', async () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  assert.is(VERSION, pkg.version);
  for (const flag of ['--version', '-V']) {
    const r = await run([flag]);
    assert.equal([r.code, r.stdout], [0, `${pkg.version}\n`]);
  }
});

test('an unknown command suggests the closest one and exits 2', async () => {
  assertOneLineError(
    await run(['lst']),
    2,
    "unknown command 'lst'",
    "did you mean 'vfiobox list'?",
  );
  assertOneLineError(
    await run(['unbnd']),
    2,
    "unknown command 'unbnd'",
    "did you mean 'vfiobox unbind'?",
  );
  assertOneLineError(
    await run(['help', 'bnd']),
    2,
    "unknown command 'bnd'",
    "did you mean 'vfiobox bind'?",
  );
  assertOneLineError(
    await run(['frobnicate']),
    2,
    "unknown command 'frobnicate'",
    'see vfiobox --help for the commands',
  );
});

test('closest prefers a unique prefix, then the smallest edit distance', () => {
  const names = ['list', 'bind', 'unbind', 'info', 'inspect'];
  assert.is(closest('un', names), 'unbind');
  assert.is(closest('ins', names), 'inspect');
  assert.is(closest('in', names), 'info', 'ambiguous prefix falls back to distance');
  assert.is(closest('lsit', names), 'list');
  assert.is(closest('xyzzy', names), undefined);
});

test('unknown options and stray arguments are usage errors naming the command', async () => {
  assertOneLineError(
    await run(['list', '--jsn']),
    2,
    "unknown option '--jsn'",
    'see vfiobox list --help',
  );
  assertOneLineError(
    await run(['list', 'extra']),
    2,
    "unexpected argument 'extra'",
    'see vfiobox list --help',
  );
  assertOneLineError(
    await run(['--verbose']),
    2,
    "unknown option '--verbose'",
    'see vfiobox --help',
  );
  assertOneLineError(
    await run(['bind']),
    2,
    'bind needs at least one PCI address',
    'usage: vfiobox bind <bdf>...',
  );
});

test('list prints an aligned table with one row per device', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['list'], t);
    assert.is(r.code, 0);
    assert.is(r.stderr, '');
    const rows = lines(r.stdout).map((l) => l.split(/\s{2,}/));
    assert.equal(rows[0], ['BDF', 'VENDOR:DEVICE', 'CLASS', 'DRIVER', 'GROUP', 'CDEV', 'RESET']);
    assert.equal(rows[1], ['0000:00:00.0', '8086:29c0', '060000', '-', '0', '-', '-']);
    assert.equal(rows[3], ['0000:01:00.0', '8086:10d3', '020000', 'e1000e', '7', '-', 'flr,bus']);
    assert.equal(rows[5], [
      '0000:02:00.0',
      '144d:a808',
      '010802',
      'vfio-pci',
      '9',
      '/dev/vfio/devices/vfio2',
      'flr',
    ]);
    assert.is(rows.length, 6);
    const header = lines(r.stdout)[0] ?? '';
    for (const l of lines(r.stdout)) assert.is(l.indexOf('  ') > 0, true, 'columns separated');
    assert.is(lines(r.stdout)[3]?.indexOf('8086:10d3'), header.indexOf('VENDOR:DEVICE'));
  }));

test('list --json prints the device records', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['list', '--json'], t);
    assert.is(r.code, 0);
    assert.equal(JSON.parse(r.stdout), await listPciDevices({ root: t.root }));
  }));

test('list at a terminal adds notes about missing VFIO pieces, on stderr only', () =>
  withTree(
    createFakeSysfs({
      devices: [{ bdf: '0000:00:03.0', vendor: 0x1234, device: 0x11e8, classCode: 0xff0000 }],
      vfioPci: false,
      noiommuMode: false,
    }),
    async (t) => {
      const r = await run(['list'], t, { isTTY: true });
      assert.is(r.code, 0);
      assert.equal(lines(r.stderr), [
        'note: vfio-pci is not loaded: load vfio-pci (modprobe vfio-pci)',
        `note: no IOMMU groups and no-IOMMU mode is off: ${NOIOMMU_HINT}`,
      ]);
      assert.match(r.stderr, 'intel_iommu=on');
      assert.is((await run(['list'], t, { isTTY: false })).stderr, '');
    },
  ));

test('bind of a device alone in its group binds it and reports it ready', () =>
  withTree(sampleMachine(), async (t) => {
    t.setDriver('0000:02:00.0', 'nvme');
    const r = await run(['bind', '02:00.0'], t);
    assert.is(r.code, 0, r.stderr);
    assert.equal(lines(r.stdout), [
      '0000:02:00.0: nvme -> vfio-pci',
      '0000:02:00.0: ready (legacy, /dev/vfio/9)',
    ]);
    assert.is(t.driverOf('0000:02:00.0'), 'vfio-pci');
  }));

test('bind into a non-viable group names the blockers and the command that fixes it', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['bind', '01:00.0'], t);
    assert.equal(lines(r.stdout), ['0000:01:00.0: e1000e -> vfio-pci']);
    assertOneLineError(
      { ...r, stdout: '' },
      1,
      'IOMMU group 7 is not viable: 0000:01:00.1 (snd_hda_intel) is bound to a host driver',
      'bind them to vfio-pci too: vfiobox bind 0000:01:00.1',
    );
    const fixed = await run(['bind', '0000:01:00.1'], t);
    assert.is(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, '0000:01:00.1: ready (legacy, /dev/vfio/7)');
  }));

test('bind of several devices checks their group after binding all of them', () =>
  withTree(sampleMachine({ iommufd: true }), async (t) => {
    const r = await run(['bind', '01:00.0', '01:00.1', '0000:01:00.0'], t);
    assert.is(r.code, 0, r.stderr);
    assert.equal(lines(r.stdout), [
      '0000:01:00.0: e1000e -> vfio-pci',
      '0000:01:00.1: snd_hda_intel -> vfio-pci',
      '0000:01:00.0: ready (iommufd, /dev/vfio/devices/vfio0)',
      '0000:01:00.1: ready (iommufd, /dev/vfio/devices/vfio1)',
    ]);
  }));

test('bind of a garbage address changes nothing and names the input', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['bind', '02:00.0', 'eth0'], t);
    assertOneLineError(
      r,
      1,
      '"eth0" is not a PCI address',
      'expected [domain:]bus:device.function, e.g. 0000:00:04.0 or 00:04.0',
    );
    assert.equal(t.writes, []);
  }));

test('bind of an unknown address points at vfiobox list', () =>
  withTree(sampleMachine(), async (t) => {
    assertOneLineError(
      await run(['bind', '00:1f.7'], t),
      1,
      'no PCI device 0000:00:1f.7',
      'check `vfiobox list`',
    );
  }));

test('bind without root says so in one line', () =>
  withTree(sampleMachine(), async (t) => {
    t.failWrites(/driver_override$/, 'EACCES');
    assertOneLineError(
      await run(['bind', '01:00.0'], t),
      1,
      'cannot write /sys/bus/pci/devices/0000:01:00.0/driver_override: permission denied (EACCES)',
      'needs root: run with sudo',
    );
  }));

test('bind without vfio-pci, without /dev/vfio/vfio, or without an IOMMU names the fix', async () => {
  await withTree(sampleMachine(), async (t) => {
    t.remove('sys/bus/pci/drivers/vfio-pci');
    const r = await run(['bind', '01:00.0'], t);
    assertOneLineError(
      r,
      1,
      'the vfio-pci driver is not loaded',
      'load vfio-pci (modprobe vfio-pci)',
    );
  });
  await withTree(sampleMachine({ vfioContainer: false }), async (t) => {
    const r = await run(['bind', '02:00.0'], t);
    assert.equal(lines(r.stdout), ['0000:02:00.0: already vfio-pci']);
    assertOneLineError(
      { ...r, stdout: '' },
      1,
      'no /dev/vfio/vfio',
      'load vfio-pci (modprobe vfio-pci)',
    );
  });
  await withTree(
    createFakeSysfs({
      devices: [{ bdf: '0000:00:03.0', vendor: 1, device: 2 }],
      noiommuMode: false,
    }),
    async (t) => {
      const r = await run(['bind', '00:03.0'], t);
      assert.is(r.code, 1);
      assert.equal(
        lines(r.stderr)[0],
        'vfiobox: 0000:00:03.0 has no IOMMU group and no-IOMMU mode is not enabled',
      );
      assert.match(lines(r.stderr)[1] ?? '', /^hint: .*enable_unsafe_noiommu_mode$/);
    },
  );
});

test('a VfioError is printed as its one-line message', () =>
  withTree(sampleMachine(), async (t) => {
    t.failWrites(/drivers_probe$/, 'ENODEV');
    assertOneLineError(
      await run(['bind', '01:00.0'], t),
      1,
      'sysfs:write: no such device (ENODEV) path=/sys/bus/pci/drivers_probe bdf=0000:01:00.0',
    );
  }));

test('a device the kernel will not bind gets a dmesg hint', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['bind', '01:00.0'], t, { writer: t.writer(false) });
    assert.is(r.code, 1);
    assert.match(lines(r.stderr)[0] ?? '', 'ERR_VFIO_BIND_FAILED');
    assert.match(lines(r.stderr)[1] ?? '', 'dmesg');
  }));

test('an unexpected error prints its stack and exits 1', () =>
  withTree(sampleMachine(), async (t) => {
    const writer = {
      write: async () => {
        throw new TypeError('writer bug');
      },
    };
    const r = await run(['bind', '01:00.0'], t, { writer });
    assert.is(r.code, 1);
    assert.match(r.stderr, 'vfiobox: internal error');
    assert.match(r.stderr, 'TypeError: writer bug');
    assert.match(r.stderr, /\n\s+at /);
  }));

test('unbind reports the old and the new driver', () =>
  withTree(sampleMachine(), async (t) => {
    const r = await run(['unbind', '02:00.0', '00:00.0'], t);
    assert.is(r.code, 0, r.stderr);
    assert.equal(lines(r.stdout), [
      '0000:02:00.0: vfio-pci -> nvme',
      '0000:00:00.0: no driver -> no driver',
    ]);
  }));

test('formatError keeps multi-line messages and hints on one line each', () => {
  const text = formatError(new ConfigError('ERR_X', 'first\nsecond', 'do\n  this'));
  assert.is(text, 'vfiobox: first second\nhint: do this\n');
  const v = new VfioError({
    op: 'VFIO_GROUP_SET_CONTAINER',
    errno: 16,
    message: 'Device or resource busy',
  });
  assert.is(
    formatError(v),
    'vfiobox: VFIO_GROUP_SET_CONTAINER: Device or resource busy (EBUSY)\n' +
      'hint: the device or its IOMMU group is in use by another process\n',
  );
});

test('formatTable pads columns and trims trailing blanks', () => {
  assert.is(
    formatTable(
      ['A', 'BB'],
      [
        ['xxx', 'y'],
        ['z', ''],
      ],
    ),
    'A    BB\nxxx  y\nz\n',
  );
});

test.run();

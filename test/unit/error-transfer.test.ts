// SPDX-License-Identifier: MIT
// vfiobox's error classes cross the comlink control plane (a real MessageChannel) as real
// instances with every field, so the CLI prints a device worker's failure as one line instead
// of an internal error; other errors still arrive as comlink makes them.
import { MessageChannel } from 'node:worker_threads';
import { expose, wrap } from 'comlink';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, PluginError, ProtocolError, VfioError } from '../../host/errors.js';
import { nodeEndpoint } from '../../host/serve/endpoint.js';

const test = suite('error transfer over comlink');

interface Thrower {
  fail(which: string): void;
}

async function thrownAcross(which: string): Promise<unknown> {
  const { port1, port2 } = new MessageChannel();
  const local: Thrower = {
    fail(w) {
      if (w === 'vfio') {
        throw new VfioError({ op: 'bind', errno: 2, detail: { path: '/no/such/dir/x.sock' } });
      }
      if (w === 'protocol') throw new ProtocolError('VFIO_USER_DMA_MAP', 22, 'argsz 3');
      if (w === 'plugin') throw new PluginError('edu', 'describe', 'invalid', 'bad bar', 22);
      if (w === 'config') throw new ConfigError('ERR_VFIO_POLICY', 'bad policy', 'fix it');
      throw new TypeError('plain');
    },
  };
  expose(local, nodeEndpoint(port1));
  const remote = wrap<Thrower>(nodeEndpoint(port2));
  try {
    await remote.fail(which);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    port1.close();
    port2.close();
  }
}

test('a VfioError arrives as a VfioError with op, errno, code, detail and message', async () => {
  const err = await thrownAcross('vfio');
  assert.instance(err, VfioError);
  const e = err as VfioError;
  assert.is(e.op, 'bind');
  assert.is(e.errno, 2);
  assert.is(e.code, 'ENOENT');
  assert.equal(e.detail, { path: '/no/such/dir/x.sock' });
  assert.match(e.message, /^bind: .*\(ENOENT\) path=\/no\/such\/dir\/x\.sock$/);
});

test('ProtocolError, PluginError and ConfigError keep their class and fields', async () => {
  const p = await thrownAcross('protocol');
  assert.instance(p, ProtocolError);
  assert.is((p as ProtocolError).errno, 22);
  assert.is((p as ProtocolError).message, 'VFIO_USER_DMA_MAP: argsz 3 (EINVAL)');
  const g = await thrownAcross('plugin');
  assert.instance(g, PluginError);
  assert.is((g as PluginError).kind, 'invalid');
  assert.is((g as PluginError).plugin, 'edu');
  assert.is((g as PluginError).message, 'edu:describe: invalid: bad bar');
  const c = await thrownAcross('config');
  assert.instance(c, ConfigError);
  assert.is((c as ConfigError).hint, 'fix it');
  assert.is((c as ConfigError).code, 'ERR_VFIO_POLICY');
});

test('other errors still arrive as comlink rebuilds them (message and name kept)', async () => {
  const err = await thrownAcross('other');
  assert.instance(err, Error);
  assert.not.instance(err, VfioError);
  assert.is((err as Error).message, 'plain');
  assert.is((err as Error).name, 'TypeError');
});

test.run();

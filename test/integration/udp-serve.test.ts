/**
 * `serve({ udp })` and the udp-echo app: one reactor in this thread (every backend), and on the
 * native backend several worker threads or processes, each with its own SO_REUSEPORT socket.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, test } from 'node:test';
import { serve } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, waitFor } from '../helpers/net.js';

const app = new URL('../../src/apps/udp-echo.js', import.meta.url);

/** Send one datagram from each of `flows` sockets; resolves with the echoes' texts once all came back. */
async function echoFlows(port: number, flows: number): Promise<string[]> {
  const got: string[] = [];
  const socks = await Promise.all(Array.from({ length: flows }, async (_, i) => {
    const s = createSocket('udp4');
    s.on('message', (m) => void got.push(m.toString()));
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    s.send(`flow ${i}`, port, '127.0.0.1');
    return s;
  }));
  await waitFor(() => got.length === flows, `${flows} echoes`);
  for (const s of socks) s.close();
  return got.sort();
}

for (const backend of backends) {
  describe(`serve udp-echo (${backend})`, () => {
    test('single reactor: echoes every flow', GUARD, async () => {
      const h = await serve({ handler: app, port: 0, host: '127.0.0.1', backend, udp: true });
      assert.equal(h.mode, 'single');
      const got = await echoFlows(h.address.port, 16);
      assert.deepEqual(got, Array.from({ length: 16 }, (_, i) => `flow ${i}`).sort());
      await h.close(1000);
    });

    if (backend === 'native') {
      for (const mode of ['threads', 'processes'] as const) {
        test(`${mode}: 2 reactors share the port (SO_REUSEPORT), every flow is echoed`, GUARD, async () => {
          const h = await serve({ handler: app, port: 0, host: '127.0.0.1', udp: true, [mode]: 2 });
          assert.equal(h.mode, mode);
          if (mode === 'processes') assert.equal(h.pids().length, 2);
          const got = await echoFlows(h.address.port, 64);
          assert.equal(got.length, 64);
          await h.close(2000);
        });
      }
    }
  });
}

/**
 * Reactor-level errors (C1M_EV_ERROR): native code never prints; a failure that closes nothing
 * is counted in a control word and reported as an ERROR record, which the native backend turns
 * into an onError report. An unknown command is the one such failure a test can cause.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NativeReactor } from '../../src/backends/native.js';
import { createReactor, type Connection } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, deferred, rawClient, waitFor, within } from '../helpers/net.js';
import { RawReactor } from './raw-reactor.js';

const UNKNOWN_OP = 0x7f;

describe('reactor-level errors', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('an unknown command is skipped, counted and reported as an ERROR record; the stream goes on', GUARD, async () => {
    const r = new RawReactor();
    const k = r.b.constants;
    try {
      const { port } = r.listen();
      const client = await rawClient(port);
      await waitFor(() => r.of(k.EV_OPEN).length === 1, 'accepted');
      const [o] = r.of(k.EV_OPEN);
      r.command(UNKNOWN_OP, o!.fd, o!.gen, 0);
      r.command(k.OP_CLOSE, o!.fd, o!.gen, 0); // after it: still applied
      await waitFor(() => r.of(k.EV_ERROR).length === 1 && r.of(k.EV_CLOSE).length === 1, 'the error and the close');
      const [e] = r.of(k.EV_ERROR);
      assert.deepEqual([e!.fd, e!.gen, e!.a, r.b.errname(e!.b), e!.c], [o!.fd, o!.gen, k.E_COMMAND, 'EINVAL', UNKNOWN_OP]);
      assert.equal(r.ctl[r.L.ctlErrors], 1);
      assert.equal(r.ctl[r.L.ctlErrorsLost], 0);
      await client.waitClosed();
    } finally {
      r.close();
    }
  });

  test('the native backend reports an ERROR record through onError and keeps going', GUARD, async () => {
    const errors: Error[] = [];
    const opened = deferred<Connection>();
    const reactor = createReactor({ onOpen: (c) => opened.resolve(c), onData: (c, d) => void c.write(d) }, { backend: 'native', onError: (e) => errors.push(e) });
    try {
      const { port } = await reactor.listen({ host: '127.0.0.1', port: 0 });
      const client = await rawClient(port);
      const conn = await within(opened.promise, 'accept');
      const { fd, gen } = conn as unknown as { fd: number; gen: number };
      assert.equal((reactor as NativeReactor).command(fd, gen, UNKNOWN_OP, 0), true);
      await waitFor(() => errors.length === 1, 'an onError report');
      const err = errors[0] as Error & { code?: string; syscall?: string };
      assert.equal(err.code, 'EINVAL');
      assert.equal(err.syscall, 'command');
      assert.match(err.message, new RegExp(`fd ${fd}: unknown command ${UNKNOWN_OP} skipped`));
      await client.send('still here');
      await client.waitBytes(10);
      assert.ok(conn.open);
      client.socket.destroy();
    } finally {
      await reactor.close(100);
    }
  });
});

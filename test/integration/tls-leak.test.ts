/**
 * No leak over 10,000 TLS handshakes (native backend): a TLS echo server and a c1m TLS client
 * in one process, and a mix of outcomes per 100 connections: 80 complete (handshake, echo,
 * close), 5 closed by the client before the handshake ended, 4 garbage (plain HTTP) sent to
 * the TLS port, 4 truncated ClientHellos then a close, 4 refused by the client (untrusted
 * certificate), 3 node:tls clients that complete; and a few stalled handshakes dropped at the
 * server's handshake timeout. Afterwards the process's live SSL objects (native counter,
 * `tlsLive()`, native/src/tls.c) must be back to what they were, both reactors must count 0
 * connections, and the number of live TLS contexts must not have grown with the handshakes.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, test } from 'node:test';
import { loadBinding } from '../../src/core/binding.js';
import { createReactor, type CloseReason, type Connection, type TlsConnectOptions } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { HOST, deferred, waitFor, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();
const TOTAL = 10_000;
const CONCURRENCY = 200;
const STALLED = 5;

/** The first bytes of a TLS 1.2 ClientHello record: a record header promising more than comes. */
const TRUNCATED = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0x11, 0x22]);

type Outcome = 'complete' | 'early-close' | 'garbage' | 'truncated' | 'refused' | 'node-tls';

function outcomeOf(i: number): Outcome {
  const k = i % 100;
  if (k < 80) return 'complete';
  if (k < 85) return 'early-close';
  if (k < 89) return 'garbage';
  if (k < 93) return 'truncated';
  if (k < 97) return 'refused';
  return 'node-tls';
}

/** A plain TCP client that sends bytes and resolves when the server closed (or, with `hangUp`, closes itself). */
function raw(port: number, bytes: Buffer | undefined, hangUp: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: HOST });
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => resolve());
    s.on('connect', () => {
      if (bytes) s.write(bytes);
      if (hangUp) setTimeout(() => s.destroy(), 2);
    });
  });
}

describe('TLS: no leak over 10,000 handshakes (native)', { skip: !nativeAvailable && 'native addon not built' }, () => {
  test('live SSL objects return to the baseline, both reactors count 0 connections', { timeout: 600_000 }, async () => {
    const b = loadBinding()!;
    const [ssl0] = b.tlsLive();
    const counts: Record<string, number> = {};
    const serverErrors: Error[] = [];
    const server = createReactor({ onData: (c, d) => void c.write(d) }, { backend: 'native', timerResolution: 50, onError: (e) => serverErrors.push(e) });
    const { port } = await server.listen({ port: 0, host: HOST, tls: { cert: certs.server.cert, key: certs.server.key, handshakeTimeout: 5000 } });

    const waiting = new Map<number, { open: () => void; data: () => void; closed: (r: CloseReason) => void }>();
    const client = createReactor({
      onOpen: (c) => waiting.get(c.id)?.open(),
      onData: (c) => waiting.get(c.id)?.data(),
      onClose: (c, r) => {
        waiting.get(c.id)?.closed(r);
        waiting.delete(c.id);
      },
    }, { backend: 'native', onError: () => {} });
    const good: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
    const untrusting: TlsConnectOptions = { servername: 'localhost', ca: certs.rogueCa };

    /** One c1m client connection; `early` closes it right after connect(). */
    const c1mClient = (tls: TlsConnectOptions, early: boolean, echo: boolean): Promise<CloseReason> => {
      const closed = deferred<CloseReason>();
      let conn: Connection | undefined;
      conn = client.connect({ host: HOST, port, tls });
      waiting.set(conn.id, {
        open: () => (echo ? void conn!.write('ping') : conn!.close()),
        data: () => conn!.close(),
        closed: (r) => closed.resolve(r),
      });
      if (early) conn.close();
      return closed.promise;
    };
    /** A node:tls client: handshake, one echo, end. A reset after the echo (the server closing
     * while the client's close_notify is in flight) is not a failure; one before it is. */
    const nodeClient = (): Promise<void> => new Promise((resolve, reject) => {
      let echoed = false;
      const s = tlsConnect({ port, host: HOST, servername: 'localhost', ca: certs.ca }, () => s.write('ping'));
      s.on('data', () => {
        echoed = true;
        s.end();
      });
      s.on('error', (e) => (echoed ? undefined : reject(e)));
      s.on('close', () => resolve());
    });

    const one = async (i: number): Promise<void> => {
      const o = outcomeOf(i);
      counts[o] = (counts[o] ?? 0) + 1;
      switch (o) {
        case 'complete': return void (await c1mClient(good, false, true));
        case 'early-close': return void (await c1mClient(good, true, false));
        case 'garbage': return raw(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false);
        case 'truncated': return raw(port, TRUNCATED, true);
        case 'refused': {
          const r = await c1mClient(untrusting, false, true);
          assert.equal(r.kind, 'tls-error', `an untrusted certificate refused by the client (got ${r.kind})`);
          return;
        }
        case 'node-tls': return nodeClient();
      }
    };

    try {
    const stalled = Array.from({ length: STALLED }, () => raw(port, undefined, false)); // closed by the handshake timeout
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, b.tlsLive()[0] - ssl0)), 5);
    let ctxAfterFirst = -1;
    for (let done = 0; done < TOTAL; done += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, TOTAL - done) }, (_, j) => one(done + j));
      await within(Promise.all(batch), `handshakes ${done}..${done + batch.length}`, 120_000);
      if (ctxAfterFirst < 0) ctxAfterFirst = b.tlsLive()[1];
    }
    await within(Promise.all(stalled), 'the stalled handshakes dropped at the timeout', 60_000);
    clearInterval(sampler);

    await waitFor(() => server.stats.connections === 0 && client.stats.connections === 0, 'both reactors at 0 connections', 30_000);
    await waitFor(() => b.tlsLive()[0] === ssl0, `live SSL objects back to ${ssl0} (now ${b.tlsLive()[0]})`, 30_000);
    assert.ok(peak > 0, 'the counter saw the live connections');
    assert.equal(b.tlsLive()[1], ctxAfterFirst, 'no TLS context per handshake');
    assert.equal(counts.complete, TOTAL * 0.8);
    assert.ok(serverErrors.length >= STALLED + (counts.garbage ?? 0), `server-side handshake failures reported (${serverErrors.length})`);
    assert.ok(server.stats.tlsRejects! >= STALLED + (counts.garbage ?? 0));
    } finally {
      await client.close(1000);
      await server.close(1000);
    }
    assert.equal(b.tlsLive()[0], ssl0);
  });
});

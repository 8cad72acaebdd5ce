/**
 * The TLS hand-off (native/src/handoff.c, tls.c): an acceptor whose listener speaks TLS gives
 * each accepted fd, with a reference on the listener's context, to a target reactor, which
 * runs the handshake and reports OPEN (from = -2) once it completes. A burst larger than the
 * target's event array is drained over several wake-ups (the queue keeps the rest in order).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, test } from 'node:test';
import { loadBinding } from '../../src/core/binding.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';
import { nativeAvailable } from '../helpers/backends.js';
import { testCerts } from '../helpers/tls-certs.js';
import { RawReactor } from './raw-reactor.js';

const tlsAvailable = nativeAvailable && loadBinding()?.constants.TLS_AVAILABLE === 1;

describe('native TLS hand-off', { skip: !tlsAvailable && 'native TLS unavailable' }, () => {
  test('bursts of plain and TLS connections larger than the target\'s event array: every one opens on the target once', GUARD, async () => {
    const certs = testCerts();
    const plainAcceptor = new RawReactor(), tlsAcceptor = new RawReactor(), target = new RawReactor({ events: 32 });
    const b = target.b, k = b.constants;
    const sockets: Socket[] = [];
    try {
      const ctx = b.tlsContext({
        server: true, cert: Buffer.from(certs.server.cert), key: Buffer.from(certs.server.key), requestCert: false,
        rejectUnauthorized: true, minVersion: 0x0303, handshakeMs: 10_000, sni: [], resume: false,
      });
      const plain = plainAcceptor.listen([target.id]);
      const tls = tlsAcceptor.listen([target.id]);
      assert.equal(b.tlsListen(tlsAcceptor.h, tls.fd, ctx), 0, 'a hand-off listener takes a TLS context');
      const N = 200;
      const connected = Array.from({ length: N }, () => new Promise<void>((resolve, reject) => {
        const s = netConnect(plain.port, HOST, () => resolve());
        sockets.push(s);
        s.on('error', reject);
      }));
      const handshakes = Array.from({ length: N }, () => new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: HOST, port: tls.port, ca: certs.ca, servername: 'localhost' }, () => resolve(s.getPeerCertificate().fingerprint256));
        sockets.push(s);
        s.on('error', reject);
      }));
      // The connect(2) calls run on the next tick; then the thread stops for a moment, so each
      // acceptor finds its burst in its backlog at once and queues it to the target in one go:
      // the target's 32-record event array takes the plain ones (an OPEN each) over several
      // wake-ups, the queue keeping the rest, TLS ones among them, in order.
      await new Promise((r) => process.nextTick(r));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      await within(Promise.all(connected), 'every plain connect');
      const fps = await within(Promise.all(handshakes), 'every handshake');
      assert.deepEqual([...new Set(fps)], [new X509Certificate(certs.server.cert).fingerprint256]);
      await waitFor(() => target.of(k.EV_OPEN).length === 2 * N, 'an OPEN per connection on the target');
      const opens = target.of(k.EV_OPEN);
      assert.ok(opens.every((r) => r.a === -2), 'OPEN from a hand-off');
      assert.equal(new Set(opens.map((r) => r.fd)).size, 2 * N, 'each fd once');
      const tlsOpens = opens.filter((r) => (target.slot(r.fd, target.L.slotFlags) & k.F_TLS) !== 0);
      assert.equal(tlsOpens.length, N, 'the TLS listener\'s connections are TLS, the others not');
      for (const r of [plainAcceptor, tlsAcceptor]) assert.equal(r.of(k.EV_OPEN).length + r.of(k.EV_ACCEPT_ERROR).length, 0, 'the acceptors keep and refuse none');
      assert.equal(target.of(k.EV_ACCEPT_ERROR).length + target.of(k.EV_TLS_REJECT).length, 0, 'none refused, no handshake failed');
    } finally {
      for (const s of sockets) s.destroy();
      for (const r of [plainAcceptor, tlsAcceptor, target]) r.close();
    }
  });
});

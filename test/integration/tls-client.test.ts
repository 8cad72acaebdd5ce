/**
 * TLS clients (`connect({ tls })`) on every backend, against node:tls servers: a verified chain,
 * untrusted, expired and misnamed certificates, rejectUnauthorized: false, writes before the
 * handshake completes, ALPN, close_notify, and client certificates (mTLS).
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type TlsOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createReactor, type CloseReason, type Connection, type Reactor, type TlsConnectOptions, type TlsInfo } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, firstDiff, payload, waitFor, within } from '../helpers/net.js';
import { expiredCertReady, testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();

interface NodeServer {
  server: Server;
  port: number;
  sockets: TLSSocket[];
  raw: import('node:net').Socket[];
  ends: number;
}

/** A node:tls echo server. */
async function nodeServer(opts: TlsOptions): Promise<NodeServer> {
  const s: NodeServer = { server: createServer(opts), port: 0, sockets: [], raw: [], ends: 0 };
  s.server.on('secureConnection', (sock) => {
    s.sockets.push(sock);
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => (s.ends++, sock.end()));
    sock.on('error', () => {});
  });
  s.server.on('tlsClientError', (_err, sock) => sock.destroy());
  s.server.on('connection', (sock) => s.raw.push(sock));
  await new Promise<void>((r) => s.server.listen(0, HOST, () => r()));
  s.port = (s.server.address() as AddressInfo).port;
  return s;
}

const closeServer = (s: NodeServer | undefined): Promise<void> =>
  new Promise((r) => {
    if (!s) return r();
    for (const sock of [...s.sockets, ...s.raw]) sock.destroy();
    s.server.close(() => r());
  });

/** One c1m client connection and what happened to it. */
interface Client {
  conn: Connection;
  opened: Promise<TlsInfo | undefined>;
  closed: Promise<CloseReason>;
  bytes: () => Buffer;
  length: () => number;
}

function client(reactor: { connect: Reactor['connect'] }, port: number, tls: TlsConnectOptions, hooks: Map<number, Client & { chunks: Buffer[]; open: (i: TlsInfo | undefined) => void; close: (r: CloseReason) => void }>): Client {
  const o = deferred<TlsInfo | undefined>(), c = deferred<CloseReason>();
  const chunks: Buffer[] = [];
  const conn = reactor.connect({ host: HOST, port, tls });
  const entry = {
    conn, opened: o.promise, closed: c.promise, chunks, open: o.resolve, close: c.resolve,
    bytes: () => Buffer.concat(chunks), length: () => chunks.reduce((n, b) => n + b.length, 0),
  };
  o.promise.catch(() => {});
  hooks.set(conn.id, entry);
  return entry;
}

for (const backend of backends) {
  describe(`TLS client (${backend})`, () => {
    let good: NodeServer;
    let reactor: Reactor;
    const hooks = new Map<number, Client & { chunks: Buffer[]; open: (i: TlsInfo | undefined) => void; close: (r: CloseReason) => void }>();
    const errors: Error[] = [];
    before(async () => {
      good = await nodeServer({ cert: certs.server.cert, key: certs.server.key, ALPNProtocols: ['http/1.1'] });
      reactor = createReactor({
        onOpen: (conn) => hooks.get(conn.id)?.open(conn.tls),
        onData: (conn, d) => void hooks.get(conn.id)?.chunks.push(Buffer.from(d)),
        onClose: (conn, r) => hooks.get(conn.id)?.close(r),
      }, { backend, onError: (e) => errors.push(e) });
    });
    after(async () => {
      await reactor?.close(1000);
      await closeServer(good);
    });

    test('a verified chain: opens with conn.tls facts, echoes 1 MiB, close_notify on close()', GUARD, async () => {
      const ends = good.ends;
      const c = client(reactor, good.port, { servername: 'localhost', ca: certs.ca, alpn: ['http/1.1'] }, hooks);
      const info = await within(c.opened, 'onOpen');
      assert.ok(info);
      assert.equal(info.authorized, true);
      assert.equal(info.authorizationError, undefined);
      assert.equal(info.peerCertificate?.subject, 'CN=localhost');
      assert.equal(info.servername, 'localhost');
      assert.equal(info.alpnProtocol, 'http/1.1');
      assert.match(info.protocol, /^TLSv1\.[23]$/);
      // Read again later: the same facts (node:tls gives the peer certificate to its first reader only).
      const again = c.conn.tls;
      assert.equal(again?.authorized, true);
      assert.equal(again?.peerCertificate?.subject, 'CN=localhost');
      const data = payload(1024 * 1024 + 5, 77);
      c.conn.write(data);
      await waitFor(() => c.length() >= data.length, 'the echo');
      assert.equal(firstDiff(c.bytes(), data), -1);
      c.conn.close();
      await waitFor(() => good.ends > ends, 'the server saw the end (close_notify)');
      const r = await within(c.closed, 'onClose');
      assert.ok(r.kind === 'end' || r.kind === 'local', r.kind);
    });

    test('writes made before the handshake completes are sent once it does', GUARD, async () => {
      const c = client(reactor, good.port, { ca: certs.ca }, hooks); // servername: the IP (in the certificate)
      assert.equal(c.conn.write('early '), true);
      c.conn.write('bytes');
      await within(c.opened, 'onOpen');
      await waitFor(() => c.length() >= 11, 'the echo');
      assert.equal(c.bytes().toString(), 'early bytes');
      c.conn.close();
      await c.closed;
    });

    const failing: [string, () => TlsOptions, TlsConnectOptions, RegExp][] = [
      ['untrusted chain', () => ({ cert: certs.rogue.cert, key: certs.rogue.key }), { servername: 'localhost', ca: certs.ca }, /verify|local issuer|self.signed/i],
      ['expired certificate', () => ({ cert: certs.expired.cert, key: certs.expired.key }), { servername: 'localhost', ca: certs.ca }, /expired/i],
      ['wrong host name', () => ({ cert: certs.server.cert, key: certs.server.key }), { servername: 'other.test', ca: certs.ca }, /hostname mismatch|does not match/i],
    ];
    for (const [name, serverOpts, tls, why] of failing) {
      test(`${name}: closed with tls-error, never opened`, GUARD, async () => {
        if (name.startsWith('expired')) await expiredCertReady();
        const s = await nodeServer(serverOpts());
        try {
          let opened = false;
          const c = client(reactor, s.port, tls, hooks);
          void c.opened.then(() => (opened = true));
          const r = await within(c.closed, 'onClose');
          assert.equal(r.kind, 'tls-error');
          assert.equal(r.code, 'ERR_C1M_TLS');
          assert.match(r.error!.message, why);
          assert.equal(opened, false);
        } finally {
          await closeServer(s);
        }
      });
    }

    test('rejectUnauthorized: false opens despite an untrusted chain and says why it is not authorized', GUARD, async () => {
      const s = await nodeServer({ cert: certs.rogue.cert, key: certs.rogue.key });
      try {
        const c = client(reactor, s.port, { servername: 'localhost', ca: certs.ca, rejectUnauthorized: false }, hooks);
        const info = await within(c.opened, 'onOpen');
        assert.equal(info?.authorized, false);
        assert.match(info!.authorizationError!, /verify|issuer|self.signed/i);
        c.conn.write('ok');
        await waitFor(() => c.length() >= 2, 'the echo');
        c.conn.close();
        await c.closed;
      } finally {
        await closeServer(s);
      }
    });

    test('mTLS: a client certificate is verified by the server; without one the server refuses', GUARD, async () => {
      const s = await nodeServer({ cert: certs.server.cert, key: certs.server.key, ca: certs.ca, requestCert: true, rejectUnauthorized: true });
      try {
        const authorized = deferred<boolean>();
        s.server.once('secureConnection', (sock) => authorized.resolve(sock.authorized));
        const c = client(reactor, s.port, { servername: 'localhost', ca: certs.ca, cert: certs.client.cert, key: certs.client.key }, hooks);
        await within(c.opened, 'onOpen');
        assert.equal(await authorized.promise, true);
        c.conn.write('mtls');
        await waitFor(() => c.length() >= 4, 'the echo');
        c.conn.close();
        await c.closed;
        // without a certificate: TLS 1.3 completes the client's side first; the server's alert ends it
        const bare = client(reactor, s.port, { servername: 'localhost', ca: certs.ca }, hooks);
        const r = await within(bare.closed, 'onClose');
        assert.equal(r.kind, 'tls-error', `${r.kind} ${r.code} ${r.error?.message}`);
        assert.match(r.error!.message, /certificate/i);
      } finally {
        await closeServer(s);
      }
    });

    test('bad client options throw at connect: cert without key, garbage CA', GUARD, () => {
      assert.throws(() => reactor.connect({ host: HOST, port: good.port, tls: { cert: certs.client.cert } }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => reactor.connect({ host: HOST, port: good.port, tls: { ca: 'garbage' } }), { code: 'ERR_C1M_TLS_CONFIG' });
      assert.deepEqual(errors, []);
    });
  });
}

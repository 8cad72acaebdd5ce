/**
 * TLS client session resumption (`TlsConnectOptions.resume`) on every backend: the second
 * connection made with the same options object resumes (`conn.tls.resumed`), against a c1m
 * TLS server and a node:tls server, over TLS 1.2 and 1.3; with `resume: false`, or with another
 * options object, it does not; a server that forgot the session gets a full handshake; the
 * 65th key evicts the oldest.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type TlsOptions } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createReactor, type CloseReason, type Reactor, type TlsConnectOptions, type TlsInfo } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, echoHandler, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();

async function nodeServer(opts: TlsOptions): Promise<{ server: Server; port: number }> {
  const server = createServer(opts, (sock) => {
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end());
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

interface Hook {
  open: (i: TlsInfo | undefined) => void;
  /** Close at once from onOpen (before any TLS 1.3 session ticket can have been read). */
  closeAtOpen?: boolean;
  echoed: () => void;
  closed: (r: CloseReason) => void;
}

for (const backend of backends) {
  describe(`TLS client session resumption (${backend})`, () => {
    const hooks = new Map<number, Hook>();
    const errors: Error[] = [];
    let client: Reactor;
    let c1mServer: Reactor;
    let c1mPort = 0;
    const nodeServers: Server[] = [];

    /** Connect, echo one byte (a TLS 1.3 session arrives after the handshake), close: was it resumed? */
    async function roundTrip(port: number, tls: TlsConnectOptions): Promise<TlsInfo> {
      const o = deferred<TlsInfo | undefined>(), e = deferred(), c = deferred<CloseReason>();
      const conn = client.connect({ host: HOST, port, tls });
      hooks.set(conn.id, { open: o.resolve, echoed: e.resolve, closed: c.resolve });
      const info = await within(o.promise, 'onOpen');
      assert.ok(info, 'conn.tls at onOpen');
      conn.write('x');
      await within(e.promise, 'the echo');
      conn.close();
      await within(c.promise, 'onClose');
      hooks.delete(conn.id);
      return info;
    }

    /** Connect and close from onOpen, sending nothing: was it resumed, and how did it close? */
    async function openClose(port: number, tls: TlsConnectOptions): Promise<[TlsInfo, CloseReason]> {
      const o = deferred<TlsInfo | undefined>(), c = deferred<CloseReason>();
      const conn = client.connect({ host: HOST, port, tls });
      hooks.set(conn.id, { open: o.resolve, echoed: () => {}, closed: c.resolve, closeAtOpen: true });
      const info = await within(o.promise, 'onOpen');
      assert.ok(info, 'conn.tls at onOpen');
      const reason = await within(c.promise, 'onClose');
      hooks.delete(conn.id);
      return [info, reason];
    }

    before(async () => {
      client = createReactor({
        onOpen: (conn) => {
          const h = hooks.get(conn.id);
          h?.open(conn.tls);
          if (h?.closeAtOpen) conn.close();
        },
        onData: (conn) => void hooks.get(conn.id)?.echoed(),
        onClose: (conn, r) => hooks.get(conn.id)?.closed(r),
      }, { backend, onError: (err) => errors.push(err) });
      c1mServer = createReactor(echoHandler, { backend, onError: (err) => errors.push(err) });
      c1mPort = (await c1mServer.listen({ port: 0, host: HOST, tls: { cert: certs.server.cert, key: certs.server.key } })).port;
    });
    after(async () => {
      await client?.close(1000);
      await c1mServer?.close(1000);
      await Promise.all(nodeServers.map((s) => new Promise((r) => s.close(r))));
    });

    const node = async (opts: TlsOptions): Promise<number> => {
      const s = await nodeServer({ cert: certs.server.cert, key: certs.server.key, ...opts });
      nodeServers.push(s.server);
      return s.port;
    };

    const servers: [string, () => Promise<number>, string][] = [
      ['a c1m server, TLS 1.3', async () => c1mPort, 'TLSv1.3'],
      ['a node:tls server, TLS 1.3', () => node({}), 'TLSv1.3'],
      ['a node:tls server, TLS 1.2', () => node({ maxVersion: 'TLSv1.2' }), 'TLSv1.2'],
    ];
    for (const [name, start, protocol] of servers) {
      test(`${name}: the second connect with the same options resumes; resume: false never does`, GUARD, async () => {
        const port = await start();
        const tls: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
        const first = await roundTrip(port, tls);
        assert.equal(first.protocol, protocol);
        assert.equal(first.resumed, false);
        const second = await roundTrip(port, tls);
        assert.equal(second.resumed, true, 'the kept session was offered and accepted');
        assert.equal(second.authorized, true);
        // node:tls has no peer certificate on a resumed session (documented); the native backend keeps it
        if (backend === 'native') assert.equal(second.peerCertificate?.subject, 'CN=localhost', 'the resumed session keeps its peer certificate');
        assert.equal((await roundTrip(port, tls)).resumed, true, 'and again (the newest session)');
        assert.equal((await roundTrip(port, { servername: 'localhost', ca: certs.ca })).resumed, false, 'another options object has its own sessions');

        const off: TlsConnectOptions = { servername: 'localhost', ca: certs.ca, resume: false };
        assert.equal((await roundTrip(port, off)).resumed, false);
        assert.equal((await roundTrip(port, off)).resumed, false);
        assert.deepEqual(errors, []);
      });
    }

    // TLS 1.3 sends its sessions after the handshake: a close right at onOpen still reads them
    // (it waits for the server's close_notify or FIN), so the next connect resumes, every time.
    for (const [name, start] of servers.slice(0, 2)) {
      test(`${name}: a connection closed at onOpen keeps its session; the next one resumes`, GUARD, async () => {
        const port = await start();
        const tls: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
        const [first, closed] = await openClose(port, tls);
        assert.equal(first.protocol, 'TLSv1.3');
        assert.equal(first.resumed, false);
        assert.ok(closed.kind === 'local' || closed.kind === 'end', `a clean close, not ${closed.kind}`);
        for (let i = 0; i < 5; i++) {
          const [info, reason] = await openClose(port, tls);
          assert.equal(info.resumed, true, `round ${i}: the session of the connection before was kept`);
          assert.ok(reason.kind === 'local' || reason.kind === 'end', `round ${i}: a clean close, not ${reason.kind}`);
        }
        assert.deepEqual(errors, []);
      });
    }

    test('sessions are kept per (server name, port): another server is not offered them', GUARD, async () => {
      const a = await node({}), b = await node({});
      const tls: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
      assert.equal((await roundTrip(a, tls)).resumed, false);
      assert.equal((await roundTrip(b, tls)).resumed, false, 'b: no session of its own yet');
      assert.equal((await roundTrip(a, tls)).resumed, true);
      assert.equal((await roundTrip(b, tls)).resumed, true);
    });

    test('a server that cannot resume (other ticket keys) gets a full handshake that verifies', GUARD, async () => {
      const port = await node({});
      const tls: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
      assert.equal((await roundTrip(port, tls)).resumed, false);
      const s = nodeServers.at(-1)!;
      s.setTicketKeys(Buffer.alloc(48, 7)); // the kept ticket no longer decrypts
      const info = await roundTrip(port, tls);
      assert.equal(info.resumed, false);
      assert.equal(info.authorized, true);
      assert.equal((await roundTrip(port, tls)).resumed, true, 'the new session is kept');
    });

    test('at most 64 (server name, port) keys per options object: the oldest is evicted', GUARD, async () => {
      const ports: number[] = [];
      for (let i = 0; i < 65; i++) ports.push(await node({}));
      const tls: TlsConnectOptions = { servername: 'localhost', ca: certs.ca };
      for (const port of ports) assert.equal((await roundTrip(port, tls)).resumed, false);
      assert.equal((await roundTrip(ports[64]!, tls)).resumed, true, 'the newest key is kept');
      assert.equal((await roundTrip(ports[1]!, tls)).resumed, true, 'the second oldest too');
      assert.equal((await roundTrip(ports[0]!, tls)).resumed, false, 'the oldest was evicted');
      assert.equal((await roundTrip(ports[0]!, tls)).resumed, true, 'and is kept again');
    });

    test('tls.resume must be a boolean', () => {
      assert.throws(() => client.connect({ host: HOST, port: c1mPort, tls: { resume: 1 as unknown as boolean } }), { code: 'ERR_C1M_INVALID_OPTION' });
    });
  });
}

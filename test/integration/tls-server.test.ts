/**
 * TLS servers on every backend, against node:tls clients: echo, large writes with
 * backpressure, many connections, close_notify both ways, ALPN, SNI, refused versions,
 * garbage and truncated handshakes, a ClientHello in one-byte writes, the handshake timeout,
 * bad certificates at listen, certificate reload, session resumption, client certificates,
 * and HTTPS through curl. Certificates come from test/helpers/tls-certs.ts (a temporary CA).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import WsClient from 'ws';
import { createHttpHandler, createReactor, createWebSocketHandler, listen, type CloseReason, type Connection, type Handler, type Reactor, type TlsInfo, type TlsServerOptions } from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, deferred, firstDiff, payload, rawClient, waitFor, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();

/** A node:tls client that collects what it receives. */
class TlsClient {
  readonly socket: TLSSocket;
  readonly chunks: Buffer[] = [];
  length = 0;
  ended = false;
  error: (Error & { code?: string }) | undefined;
  readonly secure: Promise<void>;
  readonly closed: Promise<void>;
  constructor(port: number, opts: ConnectionOptions = {}) {
    this.socket = tlsConnect({ port, host: HOST, servername: 'localhost', ca: certs.ca, ...opts });
    const s = deferred(), c = deferred();
    this.secure = s.promise;
    this.closed = c.promise;
    this.secure.catch(() => {});
    this.socket.once('secureConnect', () => s.resolve());
    this.socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
    });
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', (err) => {
      this.error ??= err;
      s.reject(err);
    });
    this.socket.on('close', () => c.resolve());
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
  async waitBytes(n: number): Promise<void> {
    await waitFor(() => this.length >= n || this.error !== undefined, `${n} bytes`, 60_000);
    if (this.error) throw this.error;
  }
}

interface TlsServer {
  reactor: Reactor;
  port: number;
  errors: (Error & { code?: string })[];
  opens: TlsInfo[];
  closes: CloseReason[];
}

async function startTls(backend: BackendName, handler: Handler, tls: TlsServerOptions, engine: { timerResolution?: number } = {}): Promise<TlsServer> {
  const errors: (Error & { code?: string })[] = [];
  const opens: TlsInfo[] = [];
  const closes: CloseReason[] = [];
  const h: Handler = {
    ...handler,
    onOpen(conn) {
      opens.push(conn.tls!);
      handler.onOpen?.(conn);
    },
    onClose(conn, r) {
      closes.push(r);
      handler.onClose?.(conn, r);
    },
  };
  const reactor = createReactor(h, { backend, onError: (e) => errors.push(e), ...engine });
  const { port } = await reactor.listen({ port: 0, host: HOST, tls });
  return { reactor, port, errors, opens, closes };
}

const echo: Handler = { onData: (c, d) => void c.write(d) };
const serverTls: TlsServerOptions = { cert: certs.server.cert, key: certs.server.key };

/** Run a command; resolves with its stdout (rejects on a non-zero exit). */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // without LD_PRELOAD: the AddressSanitizer run (scripts/asan.sh) preloads libasan, which is for node only
    const env = { ...process.env };
    delete env.LD_PRELOAD;
    execFile(cmd, args, { encoding: 'utf8', env, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

for (const backend of backends) {
  describe(`TLS server (${backend})`, () => {
    let srv: TlsServer;
    before(async () => {
      srv = await startTls(backend, echo, { ...serverTls, alpn: ['h2', 'http/1.1'] });
    });
    after(() => srv?.reactor.close(1000));

    for (const size of [1, 1000, 16_385, 65_537, 1024 * 1024 + 3, 4 * 1024 * 1024]) {
      test(`echoes ${size} bytes through TLS, every byte verified`, GUARD, async () => {
        const data = payload(size, size ^ 0x7115);
        const c = new TlsClient(srv.port);
        await c.secure;
        for (let off = 0; off < size; ) {
          const n = Math.min(size - off, 1 + ((off * 7919) % 200_000));
          c.socket.write(data.subarray(off, off + n));
          off += n;
        }
        await c.waitBytes(size);
        assert.equal(c.length, size);
        assert.equal(firstDiff(c.bytes(), data), -1, 'echoed bytes differ');
        c.socket.end();
        await c.closed;
      });
    }

    test('cipher order: the server prefers AES-128-GCM over the client\'s AES-256-GCM, honours ChaCha20 listed first, and takes `ciphers`', GUARD, async () => {
      const agreed = async (port: number, opts: ConnectionOptions): Promise<string> => {
        const c = new TlsClient(port, opts);
        await c.secure;
        const name = c.socket.getCipher().standardName;
        c.socket.end();
        await c.closed;
        return name;
      };
      // node:tls's client lists TLS_AES_256_GCM_SHA384 first; the server's order wins
      assert.equal(await agreed(srv.port, {}), 'TLS_AES_128_GCM_SHA256');
      assert.equal(await agreed(srv.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256' }).then((n) => n.includes('AES_128_GCM')), true);
      // a client without AES instructions lists ChaCha20 first
      assert.equal(await agreed(srv.port, { ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256' }), 'TLS_CHACHA20_POLY1305_SHA256');
      const only256 = await startTls(backend, echo, { ...serverTls, ciphers: 'TLS_AES_256_GCM_SHA384' });
      try {
        assert.equal(await agreed(only256.port, {}), 'TLS_AES_256_GCM_SHA384');
        const refused = new TlsClient(only256.port, { ciphers: 'TLS_AES_128_GCM_SHA256', maxVersion: 'TLSv1.3', minVersion: 'TLSv1.3' });
        await assert.rejects(refused.secure, 'no suite in common: the handshake fails');
      } finally {
        only256.reactor.close(1000);
      }
      const bad = createReactor(echo, { backend });
      try {
        await assert.rejects(bad.listen({ port: 0, host: HOST, tls: { ...serverTls, ciphers: 'NOT-A-CIPHER' } }), (e: Error & { code?: string }) => e.code === 'ERR_C1M_TLS_CONFIG' && /cipher/.test(e.message));
      } finally {
        bad.close(1000);
      }
    });

    test('conn.tls: protocol, cipher, SNI name and ALPN as the client agreed them; undefined on plain TCP', GUARD, async () => {
      const before = srv.opens.length;
      const c = new TlsClient(srv.port, { ALPNProtocols: ['http/1.1'] });
      await c.secure;
      await waitFor(() => srv.opens.length > before, 'onOpen');
      const info = srv.opens[before]!;
      assert.equal(info.protocol, c.socket.getProtocol());
      assert.equal(info.cipher, c.socket.getCipher().standardName);
      assert.equal(info.alpnProtocol, 'http/1.1');
      assert.equal(c.socket.alpnProtocol, 'http/1.1');
      assert.equal(info.servername, 'localhost');
      assert.equal(info.resumed, false);
      assert.equal(info.peerCertificate, undefined, 'no client certificate was asked for');
      assert.equal(info.authorized, false);
      c.socket.end();
      await c.closed;
      let plain: TlsInfo | undefined | null = null;
      const p = createReactor({ onOpen: (conn) => void (plain = conn.tls) }, { backend });
      const { port } = await p.listen({ port: 0, host: HOST });
      const raw = await rawClient(port);
      await waitFor(() => plain !== null, 'plain onOpen');
      assert.equal(plain, undefined);
      raw.socket.destroy();
      await p.close(1000);
    });

    test('ALPN with no protocol in common: the handshake fails (no_application_protocol)', GUARD, async () => {
      const rejects = srv.reactor.stats.tlsRejects ?? 0;
      const c = new TlsClient(srv.port, { ALPNProtocols: ['spdy/1'] });
      await assert.rejects(c.secure);
      await waitFor(() => (srv.reactor.stats.tlsRejects ?? 0) > rejects, 'the rejected handshake counted');
      assert.match(srv.errors.at(-1)!.message, /application protocol/i);
      assert.equal(srv.errors.at(-1)!.code, 'ERR_C1M_TLS_HANDSHAKE');
    });

    test('200 TLS connections in parallel, each echoing its own 32 KiB', GUARD, async () => {
      const N = 200, SIZE = 32 * 1024;
      const closes = srv.closes.length;
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const data = payload(SIZE, 500 + i);
        const c = new TlsClient(srv.port);
        await c.secure;
        c.socket.write(data);
        await c.waitBytes(SIZE);
        assert.equal(firstDiff(c.bytes(), data), -1, `connection ${i} got wrong bytes`);
        c.socket.end();
        await c.closed;
      }));
      await waitFor(() => srv.closes.length - closes === N, 'every server-side close');
      assert.ok(srv.closes.slice(closes).every((r) => r.kind === 'end'), 'every close is a clean end (close_notify)');
      await waitFor(() => srv.reactor.stats.connections === 0, 'no open connections');
    });

    test('large server writes respect backpressure: 8 MiB to a client that starts paused', GUARD, async () => {
      const TOTAL = 8 * 1024 * 1024, CHUNK = 64 * 1024;
      const data = payload(TOTAL, 0xb16);
      let sent = 0, drains = 0;
      const pump = (conn: Connection): void => {
        while (sent < TOTAL) {
          const ok = conn.write(data.subarray(sent, sent + CHUNK));
          sent += CHUNK;
          if (!ok) return;
        }
        conn.close();
      };
      const big = await startTls(backend, { onOpen: pump, onDrain: (conn) => (drains++, pump(conn)) }, serverTls);
      try {
        const c = new TlsClient(big.port);
        await c.secure;
        c.socket.pause();
        await waitFor(() => big.reactor.connections()[0]?.bufferedAmount !== undefined && big.reactor.connections()[0]!.bufferedAmount > 0, 'bytes held by the engine');
        c.socket.resume();
        await c.waitBytes(TOTAL);
        await c.closed;
        assert.equal(firstDiff(c.bytes(), data), -1);
        assert.ok(drains > 0, 'onDrain ran');
        assert.ok(c.ended, 'the client saw the end of the stream');
      } finally {
        await big.reactor.close(1000);
      }
    });

    test('close_notify both ways: the client\'s ends the stream (reason end); the server\'s close sends one (TLS 1.2: an alert record)', GUARD, async () => {
      // server -> client: watch the raw bytes under a TLS 1.2 client (its alerts are plaintext record type 21)
      const closer = await startTls(backend, { onData: (conn) => void conn.close() }, serverTls);
      try {
        const raw = netConnect({ port: closer.port, host: HOST });
        await new Promise<void>((r) => raw.once('connect', () => r()));
        const wire: Buffer[] = [];
        raw.on('data', (d: Buffer) => wire.push(d));
        const c = tlsConnect({ socket: through(raw), servername: 'localhost', ca: certs.ca, maxVersion: 'TLSv1.2' });
        const ended = deferred();
        c.on('end', () => ended.resolve());
        c.on('error', () => {});
        await new Promise<void>((r) => c.once('secureConnect', () => r()));
        c.write('bye');
        await within(ended.promise, 'the client end event');
        const all = Buffer.concat(wire);
        // walk the records: the last one before the FIN is an alert (close_notify, encrypted body)
        let off = 0, lastType = -1;
        while (off + 5 <= all.length) {
          lastType = all[off]!;
          off += 5 + all.readUInt16BE(off + 3);
        }
        assert.equal(off, all.length, 'whole records');
        assert.equal(lastType, 21, 'the last record is an alert');
        c.destroy();
      } finally {
        await closer.reactor.close(1000);
      }
      // client -> server: end() sends close_notify; the server reports a clean end
      const closes = srv.closes.length;
      const c = new TlsClient(srv.port);
      await c.secure;
      c.socket.end();
      await waitFor(() => srv.closes.length > closes, 'the server close');
      assert.equal(srv.closes[closes]!.kind, 'end');
      await c.closed;
    });

    test('SNI: two certificates by name; an unknown name gets the default one', GUARD, async () => {
      const s = await startTls(backend, echo, { ...serverTls, sni: { 'other.test': certs.other } });
      try {
        const other = new TlsClient(s.port, { servername: 'other.test' });
        await other.secure;
        assert.equal(other.socket.getPeerX509Certificate()?.subject, 'CN=other.test');
        assert.equal(other.socket.authorized, true);
        await waitFor(() => s.opens.length === 1, 'onOpen');
        assert.equal(s.opens[0]!.servername, 'other.test');
        other.socket.end();
        const unknown = new TlsClient(s.port, { servername: 'unknown.test', checkServerIdentity: () => undefined });
        await unknown.secure;
        assert.equal(unknown.socket.getPeerX509Certificate()?.subject, 'CN=localhost');
        unknown.socket.end();
        await Promise.all([other.closed, unknown.closed]);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('TLS 1.0 and 1.1 are refused; minVersion TLSv1.3 refuses 1.2', GUARD, async () => {
      const rejects = srv.reactor.stats.tlsRejects ?? 0;
      const old = new TlsClient(srv.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      await assert.rejects(old.secure);
      await waitFor(() => (srv.reactor.stats.tlsRejects ?? 0) > rejects, 'the refused handshake counted');
      assert.match(srv.errors.at(-1)!.message, /protocol|version/i);
      const s13 = await startTls(backend, echo, { ...serverTls, minVersion: 'TLSv1.3' });
      try {
        const c12 = new TlsClient(s13.port, { maxVersion: 'TLSv1.2' });
        await assert.rejects(c12.secure);
        const c13 = new TlsClient(s13.port);
        await c13.secure;
        assert.equal(c13.socket.getProtocol(), 'TLSv1.3');
        c13.socket.end();
        await c13.closed;
      } finally {
        await s13.reactor.close(1000);
      }
    });

    test('garbage, plain HTTP and a truncated ClientHello: closed, counted, told to onError; no handler callback', GUARD, async () => {
      const opens = srv.opens.length, closes = srv.closes.length;
      const rejects = srv.reactor.stats.tlsRejects ?? 0, errors = srv.errors.length;
      const http = await rawClient(srv.port);
      await http.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await http.waitClosed();
      const junk = await rawClient(srv.port);
      await junk.send(payload(3000, 9));
      await junk.waitClosed();
      // the first bytes of a real ClientHello, then FIN
      const hello = await captureClientHello();
      const cut = await rawClient(srv.port);
      await cut.send(hello.subarray(0, 40));
      cut.socket.end();
      await cut.waitClosed();
      await waitFor(() => (srv.reactor.stats.tlsRejects ?? 0) === rejects + 3, 'three rejected handshakes');
      const errs = srv.errors.slice(errors);
      assert.equal(errs.length, 3);
      // node:tls (portable) keeps a half-open handshake until its timeout: the truncated one ends there
      const last = backend === 'native' ? 'ERR_C1M_TLS_HANDSHAKE' : 'ERR_C1M_TLS_HANDSHAKE_TIMEOUT';
      assert.deepEqual(errs.map((e) => e.code), ['ERR_C1M_TLS_HANDSHAKE', 'ERR_C1M_TLS_HANDSHAKE', last]);
      assert.match(errs[0]!.message, /http request|wrong version/i);
      assert.equal(srv.opens.length, opens, 'no onOpen');
      assert.equal(srv.closes.length, closes, 'no onClose');
    });

    test('TLS 1.2 renegotiation is refused; the connection is closed with tls-error', GUARD, async () => {
      const closes = srv.closes.length;
      const c = new TlsClient(srv.port, { maxVersion: 'TLSv1.2' });
      await c.secure;
      const refused = deferred<Error | null>();
      c.socket.renegotiate({}, (err) => refused.resolve(err));
      const err = await within(Promise.race([refused.promise, c.closed.then(() => c.error ?? null)]), 'the renegotiation outcome');
      assert.match(String(err?.message ?? c.error?.message), /renegotiation/i);
      await waitFor(() => srv.closes.length > closes, 'the server close');
      assert.equal(srv.closes[closes]!.kind, 'tls-error');
    });

    test('a record cut short by a FIN closes with tls-error; a FIN between records is an end', GUARD, async () => {
      const closes = srv.closes.length;
      for (const truncate of [true, false]) {
        const raw = netConnect({ port: srv.port, host: HOST });
        await new Promise<void>((r) => raw.once('connect', () => r()));
        const c = tlsConnect({ socket: through(raw), servername: 'localhost', ca: certs.ca });
        c.on('error', () => {});
        await new Promise<void>((r) => c.once('secureConnect', () => r()));
        c.write('x');
        await new Promise((r) => c.once('data', r)); // the handshake is over on both sides
        // an application-data record header announcing 100 bytes, and 10 of them
        if (truncate) raw.write(Buffer.concat([Buffer.from([23, 3, 3, 0, 100]), Buffer.alloc(10)]));
        raw.end();
        await waitFor(() => srv.closes.length > closes + (truncate ? 0 : 1), 'the server close');
        c.destroy();
      }
      const [cut, clean] = srv.closes.slice(closes);
      // node:tls (portable) reports both as an end of stream
      assert.equal(cut!.kind, backend === 'native' ? 'tls-error' : 'end');
      assert.equal(clean!.kind, 'end');
    });

    test('a ClientHello in one-byte writes completes the handshake', GUARD, async () => {
      const raw = netConnect({ port: srv.port, host: HOST });
      raw.setNoDelay(true);
      await new Promise<void>((r) => raw.once('connect', () => r()));
      const pipe = bytewise(raw);
      const c = tlsConnect({ socket: pipe, servername: 'localhost', ca: certs.ca });
      const got: Buffer[] = [];
      c.on('data', (d: Buffer) => got.push(d));
      await new Promise<void>((r, j) => (c.once('secureConnect', () => r()), c.once('error', j)));
      c.write('split hello');
      await waitFor(() => Buffer.concat(got).toString() === 'split hello', 'the echo');
      c.end();
      raw.destroy();
    });

    test('a stalled handshake is dropped at the handshake timeout', GUARD, async () => {
      const s = await startTls(backend, echo, { ...serverTls, handshakeTimeout: 200 }, { timerResolution: 50 });
      try {
        const idle = await rawClient(s.port);
        await idle.waitClosed(60_000);
        await waitFor(() => s.errors.length === 1, 'the timeout reported');
        assert.equal(s.errors[0]!.code, 'ERR_C1M_TLS_HANDSHAKE_TIMEOUT');
        assert.equal(s.reactor.stats.tlsRejects, 1);
        assert.equal(s.opens.length, 0);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('bad certificates at listen reject before anything listens: key mismatch, garbage PEM', GUARD, async () => {
      const r = createReactor(echo, { backend });
      try {
        await assert.rejects(r.listen({ port: 0, host: HOST, tls: { cert: certs.server.cert, key: certs.other.key } }), { code: 'ERR_C1M_TLS_KEY_MISMATCH' });
        await assert.rejects(r.listen({ port: 0, host: HOST, tls: { cert: 'not a certificate', key: certs.server.key } }), { code: 'ERR_C1M_TLS_CONFIG' });
        await assert.rejects(r.listen({ port: 0, host: HOST, tls: { cert: certs.server.cert } as TlsServerOptions }), { code: 'ERR_C1M_INVALID_OPTION' });
      } finally {
        await r.close(0);
      }
    });

    test('setTlsContext: new connections get the new certificate, open ones keep theirs', GUARD, async () => {
      const s = await startTls(backend, echo, serverTls);
      try {
        const first = new TlsClient(s.port);
        await first.secure;
        s.reactor.setTlsContext!({ host: HOST, port: s.port }, { cert: certs.other.cert, key: certs.other.key });
        const second = new TlsClient(s.port, { servername: 'other.test' });
        await second.secure;
        assert.equal(second.socket.getPeerX509Certificate()?.subject, 'CN=other.test');
        first.socket.write('still here');
        await first.waitBytes(10);
        assert.equal(first.bytes().toString(), 'still here');
        assert.throws(() => s.reactor.setTlsContext!({ host: HOST, port: s.port }, { cert: certs.server.cert, key: certs.other.key }), { code: 'ERR_C1M_TLS_KEY_MISMATCH' });
        first.socket.end();
        second.socket.end();
        await Promise.all([first.closed, second.closed]);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('session tickets: a client reusing its session resumes (conn.tls.resumed)', GUARD, async () => {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const opens = srv.opens.length;
        const session = deferred<Buffer>();
        const first = new TlsClient(srv.port, { maxVersion });
        first.socket.once('session', (s: Buffer) => session.resolve(s));
        await first.secure;
        first.socket.write('x');
        const ticket = await within(session.promise, 'a session ticket');
        first.socket.end();
        await first.closed;
        const again = new TlsClient(srv.port, { maxVersion, session: ticket });
        await again.secure;
        assert.equal(again.socket.isSessionReused(), true, `${maxVersion}: the client resumed`);
        await waitFor(() => srv.opens.length === opens + 2, 'both opens');
        assert.equal(srv.opens[opens]!.resumed, false);
        assert.equal(srv.opens[opens + 1]!.resumed, true, `${maxVersion}: conn.tls.resumed`);
        again.socket.end();
        await again.closed;
      }
    });

    test('client certificates: verified and shown with requestCert; refused without or from another CA', GUARD, async () => {
      const s = await startTls(backend, echo, { ...serverTls, ca: certs.ca, requestCert: true });
      try {
        const good = new TlsClient(s.port, { cert: certs.client.cert, key: certs.client.key });
        await good.secure;
        good.socket.write('mtls');
        await good.waitBytes(4);
        await waitFor(() => s.opens.length === 1, 'onOpen');
        assert.equal(s.opens[0]!.authorized, true);
        assert.equal(s.opens[0]!.peerCertificate?.subject, 'CN=c1m test client');
        good.socket.end();
        const none = new TlsClient(s.port);
        // TLS 1.3: the client learns of the refusal after its own handshake completed
        await Promise.race([none.closed, none.secure.then(() => none.closed)]).catch(() => {});
        await waitFor(() => (s.reactor.stats.tlsRejects ?? 0) === 1, 'the refused client counted');
        const rogue = new TlsClient(s.port, { cert: certs.rogue.cert, key: certs.rogue.key });
        await Promise.race([rogue.closed, rogue.secure.then(() => rogue.closed)]).catch(() => {});
        await waitFor(() => (s.reactor.stats.tlsRejects ?? 0) === 2, 'the untrusted client counted');
        // node:tls (portable) drops an unverified client without saying why
        if (backend === 'native') assert.match(s.errors.at(-1)!.message, /certificate/i);
        assert.equal(s.opens.length, 1);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('wss: a ws client exchanges 1 MiB messages with createWebSocketHandler over TLS', GUARD, async () => {
      const server = await listen(createWebSocketHandler({ onMessage: (ws, data, isBinary) => ws.send(data, isBinary) }), {
        backend, port: 0, host: HOST, tls: serverTls,
      });
      try {
        const client = new WsClient(`wss://${HOST}:${server.address.port}/`, { ca: certs.ca }); // the certificate names 127.0.0.1
        await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
        const data = payload(1024 * 1024, 0x3355);
        const echoed = new Promise<Buffer>((r) => client.once('message', (d: Buffer) => r(d)));
        client.send(data);
        assert.equal(firstDiff(await within(echoed, 'the echo'), data), -1);
        client.close(1000);
        await new Promise<void>((r) => client.once('close', () => r()));
      } finally {
        await server.close(1000);
      }
    });

    test('HTTPS: curl --cacert gets a response from createHttpHandler over TLS', GUARD, async () => {
      const server = await listen(createHttpHandler({ routes: { 'GET /hello': (_req, res) => res.end('hello over tls') } }), {
        backend, port: 0, host: HOST, tls: { ...serverTls, alpn: ['http/1.1'] },
      });
      try {
        const cafile = `${certs.dir}/ca.crt`;
        const out = await run('curl', ['-sS', '--cacert', cafile, `https://localhost:${server.address.port}/hello`, '--resolve', `localhost:${server.address.port}:${HOST}`]);
        assert.equal(out, 'hello over tls');
      } finally {
        await server.close(1000);
      }
    });
  });
}

/** A Duplex over `raw` that writes each byte on its own (a ClientHello split at every byte). */
function bytewise(raw: Socket): Duplex {
  const d = new Duplex({
    async write(chunk: Buffer, _enc, cb) {
      for (const b of chunk) {
        raw.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
      cb();
    },
    read() {},
    final(cb) {
      raw.end();
      cb();
    },
  });
  raw.on('data', (x: Buffer) => d.push(x));
  raw.on('end', () => d.push(null));
  return d;
}

/** A Duplex over `raw`, so a test can watch the raw bytes under a node:tls client. */
function through(raw: Socket): Duplex {
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      raw.write(chunk, cb);
    },
    read() {},
    final(cb) {
      raw.end();
      cb();
    },
  });
  raw.on('data', (x: Buffer) => d.push(x));
  raw.on('end', () => d.push(null));
  return d;
}

/** The bytes of a ClientHello as node:tls sends it. */
async function captureClientHello(): Promise<Buffer> {
  const got = deferred<Buffer>();
  const sink = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      got.resolve(Buffer.from(chunk));
      cb();
    },
    read() {},
  });
  const c = tlsConnect({ socket: sink, servername: 'localhost' });
  c.on('error', () => {});
  const hello = await within(got.promise, 'a ClientHello');
  c.destroy();
  return hello;
}

/**
 * The WebSocket server on every backend: interop with the `ws` client (echo, ping/pong, close
 * handshake, limits, subprotocols), raw-socket byte fixtures (handshake answers, fragments
 * split at every byte, protocol errors), heartbeats, and publish to many clients.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WsClient from 'ws';
import { createHttpHandler, createWebSocketHandler, publish, type WebSocket, type WebSocketServerOptions } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { frame, parseFrames, type Frame } from '../helpers/ws-frames.js';
import { GUARD, HOST, deferred, payload, rawClient, startServer, waitFor, type RawClient, type TestServer } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function upgradeRequest(extra: Record<string, string> = {}, omit: string[] = [], method = 'GET'): string {
  const fields: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let s = `${method} /chat HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(fields)) if (!omit.includes(k)) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

/** The response head of a raw client, once complete. */
async function responseHead(c: RawClient): Promise<{ status: number; head: string; rest: Buffer }> {
  await waitFor(() => c.bytes().includes('\r\n\r\n') || c.closed, 'response head');
  const bytes = c.bytes();
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no response head, got ${JSON.stringify(bytes.toString('latin1'))}`);
  const head = bytes.subarray(0, end).toString('latin1');
  return { status: Number(head.split(' ')[1]), head, rest: bytes.subarray(end + 4) };
}

/** A raw client past the handshake; `frames()` parses what came after the 101. */
async function rawWs(port: number): Promise<RawClient & { frames(): Frame[] }> {
  const c = await rawClient(port);
  await c.send(upgradeRequest());
  const { status } = await responseHead(c);
  assert.equal(status, 101);
  return Object.assign(c, {
    frames(): Frame[] {
      const b = c.bytes();
      return parseFrames(b.subarray(b.indexOf('\r\n\r\n') + 4));
    },
  });
}

/** Wait for frames until `pred` holds. */
async function waitFrames(c: RawClient & { frames(): Frame[] }, pred: (f: Frame[]) => boolean, what: string): Promise<Frame[]> {
  await waitFor(() => pred(c.frames()) || c.closed, what);
  const f = c.frames();
  assert.ok(pred(f), `${what}: got ${JSON.stringify(f.map((x) => [x.opcode, x.payload.toString('hex')]))}`);
  return f;
}

function closeFrameOf(f: Frame | undefined): { code: number; reason: string } {
  assert.ok(f && f.opcode === 8, 'a close frame');
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
}

interface Ctx {
  srv: TestServer;
  url: string;
  opens: WebSocket[];
  closes: { ws: WebSocket; code: number; reason: string }[];
}

async function server(backend: (typeof backends)[number], opts: WebSocketServerOptions = {}, engine = {}): Promise<Ctx> {
  const opens: WebSocket[] = [];
  const closes: Ctx['closes'] = [];
  const handler = createWebSocketHandler({
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
    ...opts,
    onOpen(ws) {
      opens.push(ws);
      opts.onOpen?.(ws);
    },
    onClose(ws, code, reason) {
      closes.push({ ws, code, reason });
      opts.onClose?.(ws, code, reason);
    },
  });
  const srv = await startServer(backend, handler, { timerResolution: 20, ...engine });
  return { srv, url: `ws://${HOST}:${srv.port}/chat`, opens, closes };
}

function wsClient(url: string, protocols?: string[], options?: WsClient.ClientOptions): Promise<WsClient> {
  const ws = new WsClient(url, protocols, options);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WsClient): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
}

function closeEvent(ws: WsClient): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

for (const backend of backends) {
  describe(`websocket server (${backend})`, () => {
    let ctx: Ctx;
    before(async () => {
      ctx = await server(backend, { protocols: ['chat', 'superchat'] });
    });
    after(() => ctx?.srv.reactor.close(1000));

    test('answers the RFC 6455 sample key with its Sec-WebSocket-Accept', GUARD, async () => {
      const c = await rawClient(ctx.srv.port);
      await c.send(upgradeRequest());
      const { status, head, rest } = await responseHead(c);
      assert.equal(status, 101);
      assert.match(head, /\r\nUpgrade: websocket\r\n/i);
      assert.match(head, /\r\nConnection: Upgrade\r\n/i);
      assert.ok(head.includes(`\r\nSec-WebSocket-Accept: ${ACCEPT}`), head);
      assert.equal(createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'), ACCEPT);
      assert.equal(rest.length, 0);
      c.destroy();
    });

    test('echoes text as text and binary as binary with the ws client, small to large', GUARD, async () => {
      const ws = await wsClient(ctx.url);
      for (const size of [0, 1, 125, 126, 1000, 65_535, 65_536, 200_000, 1024 * 1024 - 4]) {
        const bin = payload(size, size + 1);
        let m = nextMessage(ws);
        ws.send(bin);
        let got = await m;
        assert.equal(got.isBinary, true);
        assert.ok(got.data.equals(bin), `binary ${size}`);
        const text = 'é€😀abc'.repeat(Math.ceil(size / 12)).slice(0, size);
        m = nextMessage(ws);
        ws.send(text);
        got = await m;
        assert.equal(got.isBinary, false);
        assert.equal(got.data.toString(), text, `text ${size}`);
      }
      const closed = closeEvent(ws);
      ws.close();
      await closed;
    });

    test('many messages in flight arrive in order', GUARD, async () => {
      const ws = await wsClient(ctx.url);
      const got: string[] = [];
      const done = deferred();
      const N = 2000;
      ws.on('message', (d) => {
        got.push(d.toString());
        if (got.length === N) done.resolve();
      });
      for (let i = 0; i < N; i++) ws.send(`m${i}`);
      await done.promise;
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => `m${i}`));
      ws.terminate();
    });

    test('reassembles fragmented messages with interleaved pings, split at every byte', GUARD, async () => {
      const c = await rawWs(ctx.srv.port);
      const wire = Buffer.concat([
        frame(1, 'Hel', { fin: false }),
        frame(9, 'p1'),
        frame(0, 'lo, ', { fin: false }),
        frame(0, 'wörld', { fin: true }),
        frame(2, Buffer.from([1, 2, 3])),
      ]);
      for (let i = 0; i < wire.length; i++) await c.send(wire.subarray(i, i + 1));
      const f = await waitFrames(c, (x) => x.length >= 3, 'pong and two echoes');
      assert.deepEqual(f.map((x) => [x.opcode, x.payload.toString('hex')]), [
        [10, Buffer.from('p1').toString('hex')],
        [1, Buffer.from('Hello, wörld').toString('hex')],
        [2, '010203'],
      ]);
      c.destroy();
    });

    test('reassembles a large fragmented message streamed across reads', GUARD, async () => {
      const c = await rawWs(ctx.srv.port);
      const parts = [payload(40_000, 1), payload(70_000, 2), payload(3, 3)];
      const wire = Buffer.concat([frame(2, parts[0], { fin: false }), frame(0, parts[1], { fin: false }), frame(0, parts[2])]);
      for (let off = 0; off < wire.length; off += 4093) await c.send(wire.subarray(off, off + 4093));
      const f = await waitFrames(c, (x) => x.length >= 1, 'echo');
      assert.equal(f[0].opcode, 2);
      assert.ok(f[0].payload.equals(Buffer.concat(parts)));
      c.destroy();
    });

    test('answers pings with pongs, and delivers pongs to the application', GUARD, async () => {
      const pongs: string[] = [];
      const local = await server(backend, {
        onOpen(ws) {
          ws.ping('srv');
        },
        onPong(_ws, data) {
          pongs.push(Buffer.from(data).toString());
        },
      });
      try {
        const ws = new WsClient(local.url);
        const serverPing = new Promise<string>((resolve) => ws.once('ping', (d) => resolve(d.toString())));
        await new Promise((r) => ws.once('open', r));
        assert.equal(await serverPing, 'srv');
        await waitFor(() => pongs.length === 1, 'the pong to our ping');
        assert.deepEqual(pongs, ['srv']);
        const pong = new Promise<string>((resolve) => ws.once('pong', (d) => resolve(d.toString())));
        ws.ping('hi');
        assert.equal(await pong, 'hi');
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('close handshake started by the client: code and reason both ways', GUARD, async () => {
      const before = ctx.closes.length;
      const ws = await wsClient(ctx.url);
      const closed = closeEvent(ws);
      ws.close(4000, 'bye now');
      assert.deepEqual(await closed, { code: 4000, reason: 'bye now' });
      await waitFor(() => ctx.closes.length > before, 'server onClose');
      const last = ctx.closes[ctx.closes.length - 1];
      assert.equal(last.code, 4000);
      assert.equal(last.reason, 'bye now');
      assert.equal(last.ws.readyState, 'closed');
    });

    test('close handshake started by the server: the client sees code and reason', GUARD, async () => {
      const local = await server(backend, {
        onMessage(ws, data) {
          if (data.toString() === 'close me') ws.close(4001, 'as you wish');
        },
      });
      try {
        const ws = await wsClient(local.url);
        const closed = closeEvent(ws);
        ws.send('close me');
        assert.deepEqual(await closed, { code: 4001, reason: 'as you wish' });
        await waitFor(() => local.closes.length === 1, 'server onClose');
        assert.equal(local.closes[0].code, 4001);
        assert.equal(local.opens[0].send('late'), false, 'send after close returns false');
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('an empty close frame is answered with an empty one and reported as 1005', GUARD, async () => {
      const before = ctx.closes.length;
      const c = await rawWs(ctx.srv.port);
      await c.send(frame(8, Buffer.alloc(0)));
      await c.waitClosed();
      const f = c.frames();
      assert.equal(f.length, 1);
      assert.equal(f[0].opcode, 8);
      assert.equal(f[0].payload.length, 0);
      await waitFor(() => ctx.closes.length > before, 'server onClose');
      assert.equal(ctx.closes[ctx.closes.length - 1].code, 1005);
    });

    test('closes the connection when the peer never answers our close frame', GUARD, async () => {
      const local = await server(backend, { closeTimeout: 100, onOpen: (ws) => ws.close(1000, 'done') });
      try {
        const c = await rawWs(local.srv.port);
        await c.waitClosed();
        assert.deepEqual(closeFrameOf(c.frames()[0]), { code: 1000, reason: 'done' });
        await waitFor(() => local.closes.length === 1, 'server onClose');
        assert.equal(local.closes[0].code, 1006);
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    const protocolErrors: [string, Buffer, number][] = [
      ['an unmasked frame', frame(1, 'hi', { mask: false }), 1002],
      ['a reserved opcode', frame(3, 'x'), 1002],
      ['RSV1 without an extension', frame(1, 'x', { rsv: 0x40 }), 1002],
      ['a continuation with no message', frame(0, 'x'), 1002],
      ['a fragmented ping', frame(9, 'x', { fin: false }), 1002],
      ['a close code that may not be sent', frame(8, Buffer.from([0x03, 0xed])), 1002],
      ['invalid UTF-8 in a text message', frame(1, Buffer.from([0x68, 0xff, 0x69])), 1007],
      ['invalid UTF-8 across fragments', Buffer.concat([frame(1, Buffer.from([0xe2, 0x82]), { fin: false }), frame(0, Buffer.from([0x28]))]), 1007],
      ['invalid UTF-8 in a close reason', frame(8, Buffer.from([0x03, 0xe8, 0xc3, 0x28])), 1007],
      ['a message over maxPayload', frame(2, Buffer.alloc(1025)), 1009],
    ];
    for (const [what, bytes, code] of protocolErrors) {
      test(`${what} closes with ${code}`, GUARD, async () => {
        const errors: string[] = [];
        const local = await server(backend, { maxPayload: 1024, onError: (_ws, err) => void errors.push(err.code) });
        try {
          const c = await rawWs(local.srv.port);
          await c.send(bytes);
          await c.waitClosed();
          const f = c.frames();
          assert.equal(f.length, 1, 'nothing but the close frame');
          assert.equal(closeFrameOf(f[0]).code, code);
          await waitFor(() => local.closes.length === 1, 'server onClose');
          assert.equal(local.closes[0].code, code);
          assert.equal(errors.length, 1);
        } finally {
          await local.srv.reactor.close(1000);
        }
      });
    }

    test('the ws client sees 1009 for a message over maxPayload, split or not', GUARD, async () => {
      const local = await server(backend, { maxPayload: 100_000 });
      try {
        for (const size of [100_001, 1_000_000]) {
          const ws = await wsClient(local.url);
          const closed = closeEvent(ws);
          ws.send(Buffer.alloc(size));
          assert.equal((await closed).code, 1009);
        }
        const ws = await wsClient(local.url);
        const m = nextMessage(ws);
        ws.send(Buffer.alloc(100_000, 7));
        assert.equal((await m).data.length, 100_000);
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    const badRequests: [string, string, number, RegExp?][] = [
      ['no Sec-WebSocket-Key', upgradeRequest({}, ['Sec-WebSocket-Key']), 400],
      ['a key that is not 16 bytes of base64', upgradeRequest({ 'Sec-WebSocket-Key': 'c2hvcnQ=' }), 400],
      ['no Upgrade header', upgradeRequest({}, ['Upgrade']), 400],
      ['Upgrade: h2c', upgradeRequest({ Upgrade: 'h2c' }), 400],
      ['no Connection: upgrade', upgradeRequest({ Connection: 'keep-alive' }), 400],
      ['no Sec-WebSocket-Version', upgradeRequest({}, ['Sec-WebSocket-Version']), 400],
      ['Sec-WebSocket-Version: 8', upgradeRequest({ 'Sec-WebSocket-Version': '8' }), 426, /\r\nSec-WebSocket-Version: 13/],
      ['a malformed Sec-WebSocket-Protocol', upgradeRequest({ 'Sec-WebSocket-Protocol': 'a, a' }), 400],
      ['POST', upgradeRequest({}, [], 'POST'), 405, /\r\nAllow: GET/],
      ['an HTTP/1.0 request', 'GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 400],
      ['a malformed head', 'GET / HTTP/1.1\r\nHost localhost\r\n\r\n', 400],
    ];
    for (const [what, request, status, header] of badRequests) {
      test(`${what}: ${status}, then close`, GUARD, async () => {
        const c = await rawClient(ctx.srv.port);
        await c.send(request);
        await c.waitClosed();
        const { status: got, head } = await responseHead(c);
        assert.equal(got, status, head);
        if (header) assert.match(head, header);
        assert.doesNotMatch(head, /Sec-WebSocket-Accept/);
      });
    }

    test('a head larger than maxHeaderBytes: 431', GUARD, async () => {
      const c = await rawClient(ctx.srv.port);
      void c.send(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}`);
      await c.waitClosed();
      assert.equal((await responseHead(c)).status, 431);
    });

    test('the ws client gets an error for a version the server refuses', GUARD, async () => {
      const err = await new Promise<Error>((resolve) => {
        const ws = new WsClient(ctx.url, { protocolVersion: 8 });
        ws.once('error', resolve);
      });
      assert.match(err.message, /426/);
    });

    test('negotiates the subprotocol: first offered that the server supports', GUARD, async () => {
      let ws = await wsClient(ctx.url, ['v2', 'superchat', 'chat']);
      assert.equal(ws.protocol, 'superchat');
      await waitFor(() => ctx.opens.some((o) => o.protocol === 'superchat'), 'server side protocol');
      ws.terminate();
      // None supported: the 101 carries no Sec-WebSocket-Protocol, which the ws client refuses.
      await assert.rejects(wsClient(ctx.url, ['v9']), /Server sent no subprotocol/);
      ws = await wsClient(ctx.url);
      assert.equal(ws.protocol, '');
      ws.terminate();
    });

    test('a protocols function chooses among the offered names', GUARD, async () => {
      const local = await server(backend, { protocols: (offered) => offered[offered.length - 1] });
      try {
        const ws = await wsClient(local.url, ['a', 'b', 'c']);
        assert.equal(ws.protocol, 'c');
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('onUpgrade rejects with a status, or attaches per-connection data', GUARD, async () => {
      const local = await server(backend, {
        onUpgrade(req) {
          if (req.target === '/deny') return false;
          if (req.target === '/auth') return { status: 401, headers: [['WWW-Authenticate', 'Bearer']] };
          return { user: req.target.slice(1) };
        },
        onMessage(ws, data) {
          ws.send(`${(ws.data as { user: string }).user}:${data.toString()}`);
        },
      });
      try {
        for (const [path, status] of [['/deny', 403], ['/auth', 401]] as const) {
          const c = await rawClient(local.srv.port);
          await c.send(upgradeRequest().replace('/chat', path));
          await c.waitClosed();
          const r = await responseHead(c);
          assert.equal(r.status, status);
          if (status === 401) assert.match(r.head, /\r\nWWW-Authenticate: Bearer/);
        }
        const ws = await wsClient(`ws://${HOST}:${local.srv.port}/alice`);
        const m = nextMessage(ws);
        ws.send('hi');
        assert.equal((await m).data.toString(), 'alice:hi');
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('WebSockets are handles: same id across callbacks, data lives until onClose, then stale', GUARD, async () => {
      const ids = new Set<number>();
      const seen: unknown[] = [];
      let kept: WebSocket | undefined;
      const local = await server(backend, {
        protocols: ['p1', 'p2'],
        onOpen(ws) {
          ids.add(ws.id);
          assert.equal(ws.data, undefined);
          ws.data = { n: 0 };
          kept = ws;
        },
        onMessage(ws, data) {
          ids.add(ws.id);
          const d = ws.data as { n: number };
          d.n++;
          if (data.toString() === 'drop') ws.data = undefined;
          ws.send(`${ws.protocol}:${d.n}:${ws.readyState}`);
        },
        onClose(ws) {
          seen.push(ws.data, ws.readyState);
        },
      });
      try {
        const ws = await wsClient(`ws://${HOST}:${local.srv.port}/`, ['p2']);
        for (const [msg, want] of [['a', 'p2:1:open'], ['b', 'p2:2:open']] as const) {
          const m = nextMessage(ws);
          ws.send(msg);
          assert.equal((await m).data.toString(), want);
        }
        assert.equal(ids.size, 1, 'one id for every handle');
        assert.deepEqual(kept!.data, { n: 2 });
        let m = nextMessage(ws);
        ws.send('drop');
        assert.equal((await m).data.toString(), 'p2:3:open');
        assert.equal(kept!.data, undefined);
        kept!.data = { n: 10 };
        m = nextMessage(ws);
        ws.send('c');
        assert.equal((await m).data.toString(), 'p2:11:open');
        const closed = closeEvent(ws);
        ws.close(1000);
        await closed;
        await waitFor(() => seen.length === 2, 'onClose');
        assert.deepEqual(seen, [{ n: 11 }, 'closed']);
        assert.equal(kept!.readyState, 'closed');
        assert.equal(kept!.data, undefined);
        assert.equal(kept!.send('late'), false);
        assert.equal(kept!.protocol, '');
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('upgradeHook: HTTP and WebSockets on one port, bytes behind the head kept', GUARD, async () => {
      const wsHandler = createWebSocketHandler({
        protocols: ['chat'],
        onMessage(ws, data, isBinary) {
          ws.send(data, isBinary);
        },
      });
      const http = createHttpHandler({
        routes: { 'GET /': (_req, res) => res.end('page') },
        onUpgrade: wsHandler.upgradeHook(),
      });
      const srv = await startServer(backend, http, { timerResolution: 20 });
      wsHandler.onReactor?.(srv.reactor);
      try {
        const page = await fetch(`http://${HOST}:${srv.port}/`);
        assert.equal(await page.text(), 'page');
        const ws = await wsClient(`ws://${HOST}:${srv.port}/socket`, ['chat']);
        assert.equal(ws.protocol, 'chat');
        const m = nextMessage(ws);
        ws.send('over http');
        assert.equal((await m).data.toString(), 'over http');
        ws.terminate();
        // A whole frame and half of the next one behind the request, the rest later.
        const c = await rawClient(srv.port);
        const second = frame(2, Buffer.from('second frame'));
        await c.send(Buffer.concat([Buffer.from(upgradeRequest()), frame(1, 'first'), second.subarray(0, 5)]));
        await waitFor(() => parseFrames(responseHeadSync(c) ?? Buffer.alloc(0)).length === 1, 'first echo');
        await c.send(second.subarray(5));
        await waitFor(() => parseFrames(responseHeadSync(c)!).length === 2, 'second echo');
        const f = parseFrames(responseHeadSync(c)!);
        assert.deepEqual(f.map((x) => x.payload.toString()), ['first', 'second frame']);
        // A bad upgrade through the hook gets the WebSocket handler's answer.
        const bad = await rawClient(srv.port);
        await bad.send(upgradeRequest({ 'Sec-WebSocket-Version': '8' }));
        await bad.waitClosed();
        assert.equal((await responseHead(bad)).status, 426);
        c.destroy();
      } finally {
        await srv.reactor.close(1000);
      }
    });

    test('upgrades to two WebSocket handlers and a tag-setting raw handler on one HTTP port each reach their own', GUARD, async () => {
      // The first WebSocket handler's connections are routed by their tag, the others by id:
      // an interleaving of the three must never send one's events to another.
      const closed = { a: 0, b: 0, raw: 0 };
      const mk = (name: 'a' | 'b') => createWebSocketHandler({
        onMessage(ws, data) {
          ws.send(`${name}:${data.toString()}`);
        },
        onClose() {
          closed[name]++;
        },
      });
      const a = mk('a');
      const b = mk('b');
      const raw = {
        onData(conn: import('../../src/index.js').Connection, data: Buffer) {
          conn.tag = 7;
          conn.write(Buffer.concat([Buffer.from('raw:'), data]));
        },
        onClose() {
          closed.raw++;
        },
      };
      const hookA = a.upgradeHook();
      const hookB = b.upgradeHook();
      const http = createHttpHandler({
        routes: { 'GET /': (_req, res) => res.end('page') },
        onUpgrade(req, conn, head) {
          if (req.path === '/a') return hookA(req, conn, head);
          if (req.path === '/b') return hookB(req, conn, head);
          conn.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\n');
          return raw;
        },
      });
      const srv = await startServer(backend, http, { timerResolution: 20 });
      a.onReactor?.(srv.reactor);
      b.onReactor?.(srv.reactor);
      try {
        const clients: { name: string; ws: WsClient }[] = [];
        const raws: RawClient[] = [];
        for (let i = 0; i < 6; i++) {
          const name = i % 2 === 0 ? 'a' : 'b';
          clients.push({ name, ws: await wsClient(`ws://${HOST}:${srv.port}/${name}`) });
          const r = await rawClient(srv.port);
          await r.send('GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\n');
          raws.push(r);
        }
        for (const [i, c] of clients.entries()) {
          const m = nextMessage(c.ws);
          c.ws.send(`m${i}`);
          assert.equal((await m).data.toString(), `${c.name}:m${i}`);
        }
        for (const [i, r] of raws.entries()) {
          await waitFor(() => r.bytes().includes('\r\n\r\n'), 'raw 101');
          await r.send(`r${i}`);
          await waitFor(() => r.bytes().toString('latin1').endsWith(`raw:r${i}`), `raw echo ${i}`);
        }
        const page = await fetch(`http://${HOST}:${srv.port}/`);
        assert.equal(await page.text(), 'page');
        for (const c of clients) c.ws.terminate();
        for (const r of raws) r.destroy();
        await waitFor(() => closed.a === 3 && closed.b === 3 && closed.raw === 6, 'every close to its handler');
        assert.deepEqual(closed, { a: 3, b: 3, raw: 6 });
      } finally {
        await srv.reactor.close(1000);
      }
    });

    test('frames sent right behind the upgrade request are read', GUARD, async () => {
      const c = await rawClient(ctx.srv.port);
      await c.send(Buffer.concat([Buffer.from(upgradeRequest()), frame(1, 'early')]));
      await waitFor(() => parseFrames((responseHeadSync(c) ?? Buffer.alloc(0))).length === 1, 'echo');
      const f = parseFrames(responseHeadSync(c)!);
      assert.equal(f[0].payload.toString(), 'early');
      c.destroy();
    });

    test('publish sends one frame to many clients', GUARD, async () => {
      const local = await server(backend, { onMessage() {} });
      try {
        const N = 50;
        const clients = await Promise.all(Array.from({ length: N }, () => wsClient(local.url)));
        await waitFor(() => local.opens.length === N, 'all open');
        const got = clients.map((ws) => nextMessage(ws));
        const ids = local.opens.map((ws) => ws.id);
        assert.equal(publish(local.srv.reactor, ids, 'news'), N);
        for (const m of await Promise.all(got)) {
          assert.equal(m.isBinary, false);
          assert.equal(m.data.toString(), 'news');
        }
        const bin = clients.map((ws) => nextMessage(ws));
        assert.equal(publish(local.srv.reactor, ids, Buffer.from([9, 8, 7])), N);
        for (const m of await Promise.all(bin)) {
          assert.equal(m.isBinary, true);
          assert.deepEqual([...m.data], [9, 8, 7]);
        }
        for (const ws of clients) ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('send returns false past the high-water mark, then onDrain', GUARD, async () => {
      let sent = 0;
      let drained = 0;
      const big = payload(48 * 1024, 5);
      const local = await server(backend, {
        onOpen(ws) {
          do sent++;
          while (ws.send(big) && sent < 1000);
          assert.ok(ws.bufferedAmount >= 0);
        },
        onDrain() {
          drained++;
        },
      });
      try {
        const ws = new WsClient(local.url);
        let got = 0;
        ws.on('message', (d) => {
          assert.ok((d as Buffer).equals(big));
          got++;
        });
        await waitFor(() => sent > 0 && got === sent && drained > 0, 'every message and a drain');
        assert.ok(sent > 1 && sent < 1000, `send returned false after ${sent} messages`);
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('heartbeat: pings a quiet peer; a live one stays, a dead one is closed', GUARD, async () => {
      const local = await server(backend, { pingInterval: 60 });
      try {
        const ws = await wsClient(local.url);
        let pings = 0;
        ws.on('ping', () => pings++);
        await waitFor(() => pings >= 3, 'three heartbeat pings');
        assert.equal(ws.readyState, WsClient.OPEN);
        const c = await rawWs(local.srv.port);
        await c.waitClosed();
        assert.ok(c.frames().some((f) => f.opcode === 9), 'the dead peer was pinged first');
        await waitFor(() => local.closes.length === 1, 'server onClose');
        assert.equal(local.closes[0].code, 1006);
        assert.equal(ws.readyState, WsClient.OPEN);
        ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('a callback that throws resets only its connection (1006), reported to onError', GUARD, async () => {
      const local = await server(backend, {
        onMessage(ws, data) {
          if (data.toString() === 'boom') throw new Error('boom');
          ws.send(data);
        },
      });
      try {
        const bad = await wsClient(local.url);
        const good = await wsClient(local.url);
        const closed = closeEvent(bad);
        bad.send('boom');
        assert.equal((await closed).code, 1006);
        await waitFor(() => local.closes.length === 1, 'server onClose');
        assert.equal(local.closes[0].code, 1006);
        assert.deepEqual(local.srv.errors.map((e) => e.message), ['boom']);
        const m = nextMessage(good);
        good.send('still here');
        assert.equal((await m).data.toString(), 'still here');
        good.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('graceful shutdown sends 1001 to every client', GUARD, async () => {
      const local = await server(backend, {});
      const ws = await wsClient(local.url);
      const closed = closeEvent(ws);
      await local.srv.reactor.close(5000);
      assert.equal((await closed).code, 1001);
    });

    test('reports no engine errors', () => {
      assert.deepEqual(ctx.srv.errors.map((e) => e.message), []);
    });
  });
}

/** Bytes after the response head, or null before it is complete. */
function responseHeadSync(c: RawClient): Buffer | null {
  const b = c.bytes();
  const end = b.indexOf('\r\n\r\n');
  return end < 0 ? null : b.subarray(end + 4);
}

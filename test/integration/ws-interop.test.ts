/**
 * Interop with the `ws` package in both directions, on every backend: the `ws` client against
 * the c1m server, and the c1m client (both levels) against `ws`'s WebSocketServer. Text,
 * binary, fragmented messages, ping/pong, close codes and reasons, large messages, and
 * subprotocol selection; and the c1m client with permessage-deflate against `ws` servers with
 * it enabled: without and with context takeover, a limited client window, a server that
 * declines, and the inflate limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WsClient, { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import {
  createReactor,
  createWebSocketClientHandler,
  createWebSocketHandler,
  WebSocketClient,
  type ClientWebSocket,
  type Reactor,
  type WebSocket,
  type WebSocketClientHandler,
} from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, deferred, payload, startServer, waitFor, type TestServer } from '../helpers/net.js';

const MiB = 1024 * 1024;

/** Collects a WebSocket-like emitter's events as plain values. */
function record(ws: NodeJS.EventEmitter): unknown[][] {
  const log: unknown[][] = [];
  for (const name of ['open', 'message', 'ping', 'pong', 'error', 'close']) {
    ws.on(name, (...args: unknown[]) =>
      log.push([name, ...args.map((a) => (Buffer.isBuffer(a) ? Buffer.from(a) : a instanceof Error ? (a as { code?: string }).code ?? a.message : a))]),
    );
  }
  return log;
}

const count = (log: unknown[][], name: string): number => log.filter((e) => e[0] === name).length;
const messages = (log: unknown[][]): { data: Buffer; isBinary: boolean }[] =>
  log.filter((e) => e[0] === 'message').map((e) => ({ data: e[1] as Buffer, isBinary: e[2] as boolean }));

for (const backend of backends) {
  describe(`ws client -> c1m server (${backend})`, () => {
    let srv: TestServer;
    let url: string;
    const sockets: WebSocket[] = [];
    const closes: { ws: WebSocket; code: number; reason: string }[] = [];
    const pings: string[] = [];
    before(async () => {
      const handler = createWebSocketHandler({
        protocols: ['v2', 'v1'],
        onOpen: (ws) => sockets.push(ws),
        onMessage(ws, data, isBinary) {
          if (!isBinary && data.toString() === 'close-please') ws.close(4100, 'as you wish');
          else ws.send(data, isBinary);
        },
        onPing: (_ws, data) => pings.push(Buffer.from(data).toString()),
        onClose: (ws, code, reason) => closes.push({ ws, code, reason }),
      });
      srv = await startServer(backend, handler, { timerResolution: 20 });
      url = `ws://${HOST}:${srv.port}/`;
    });
    after(() => srv?.reactor.close(200));

    async function open(protocols?: string[]): Promise<{ ws: WsClient; log: unknown[][]; peer: WebSocket }> {
      const before = sockets.length;
      const ws = new WsClient(url, protocols, { perMessageDeflate: false });
      const log = record(ws);
      await waitFor(() => count(log, 'open') === 1 || count(log, 'close') === 1, 'open');
      assert.equal(count(log, 'open'), 1, JSON.stringify(log));
      await waitFor(() => sockets.length > before, 'server open');
      return { ws, log, peer: sockets[sockets.length - 1] };
    }

    test('text, binary, fragmented and large messages', GUARD, async () => {
      const { ws, log } = await open(['v1', 'v2']);
      assert.equal(ws.protocol, 'v1', 'the first offered name the server supports');
      const big = payload(MiB, 9);
      ws.send('hello');
      ws.send(Buffer.from([0, 1, 2]));
      ws.send('frag', { fin: false });
      ws.send('men', { fin: false });
      ws.send('ted', { fin: true });
      ws.send(Buffer.from([9]), { binary: true, fin: false });
      ws.send(Buffer.from([8]), { binary: true, fin: true });
      ws.send(big);
      ws.send('');
      await waitFor(() => count(log, 'message') === 6, 'six echoes');
      const got = messages(log);
      assert.deepEqual(got.slice(0, 4).map((m) => [m.data.toString('hex'), m.isBinary]), [
        [Buffer.from('hello').toString('hex'), false],
        ['000102', true],
        [Buffer.from('fragmented').toString('hex'), false],
        ['0908', true],
      ]);
      assert.ok(got[4].data.equals(big) && got[4].isBinary);
      assert.deepEqual([got[5].data.length, got[5].isBinary], [0, false]);
      ws.terminate();
    });

    test('ping and pong both ways', GUARD, async () => {
      const { ws, log, peer } = await open();
      ws.ping('from ws');
      await waitFor(() => count(log, 'pong') === 1, 'pong');
      assert.equal((log.find((e) => e[0] === 'pong')![1] as Buffer).toString(), 'from ws');
      assert.equal(pings.at(-1), 'from ws');
      peer.ping('from c1m');
      await waitFor(() => count(log, 'ping') === 1, 'ping');
      assert.equal((log.find((e) => e[0] === 'ping')![1] as Buffer).toString(), 'from c1m');
      ws.terminate();
    });

    test('close with code and reason, started by either side', GUARD, async () => {
      let { ws, log, peer } = await open();
      ws.close(4000, 'ws says bye');
      await waitFor(() => count(log, 'close') === 1 && closes.some((c) => c.ws.id === peer.id), 'both closes');
      assert.equal(log.at(-1)![1], 4000);
      assert.equal((log.at(-1)![2] as Buffer).toString(), 'ws says bye');
      const srvClose = closes.find((c) => c.ws.id === peer.id);
      assert.deepEqual([srvClose?.code, srvClose?.reason], [4000, 'ws says bye']);

      ({ ws, log, peer } = await open());
      ws.send('close-please');
      await waitFor(() => count(log, 'close') === 1 && closes.some((c) => c.ws.id === peer.id), 'both closes');
      assert.equal(log.at(-1)![1], 4100);
      assert.equal((log.at(-1)![2] as Buffer).toString(), 'as you wish');
      assert.equal(closes.find((c) => c.ws.id === peer.id)?.code, 4100);
      assert.equal(count(log, 'error'), 0);
    });
  });

  describe(`c1m client -> ws server (${backend})`, () => {
    let wss: WebSocketServer;
    let url: string;
    const serverSockets: WsSocket[] = [];
    const requests: IncomingMessage[] = [];
    const serverCloses: { code: number; reason: string }[] = [];
    const serverPings: string[] = [];
    before(async () => {
      wss = new WebSocketServer({
        host: HOST,
        port: 0,
        handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false),
      });
      await new Promise((r) => wss.once('listening', r));
      url = `ws://${HOST}:${(wss.address() as { port: number }).port}/room`;
      wss.on('connection', (ws, req) => {
        serverSockets.push(ws);
        requests.push(req);
        ws.on('ping', (d) => serverPings.push(d.toString()));
        ws.on('close', (code, reason) => serverCloses.push({ code, reason: reason.toString() }));
        ws.on('message', (data, isBinary) => {
          const text = isBinary ? '' : data.toString();
          if (text === 'fragments') {
            ws.send('one ', { fin: false });
            ws.send('two ', { fin: false });
            ws.send('three', { fin: true });
            ws.send(Buffer.from([1]), { binary: true, fin: false });
            ws.ping('between');
            ws.send(Buffer.from([2]), { binary: true, fin: true });
          } else if (text === 'close-please') {
            ws.close(4200, 'ws server bye');
          } else if (text === 'ping-me') {
            ws.ping('from ws server');
          } else {
            ws.send(data, { binary: isBinary });
          }
        });
      });
    });
    after(async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
    });

    test('WebSocketClient: text, binary, large, fragmented messages and subprotocol selection', GUARD, async () => {
      const ws = new WebSocketClient(url, ['a', 'b'], { backend });
      const log = record(ws);
      await waitFor(() => count(log, 'open') === 1 || count(log, 'close') === 1, 'open');
      assert.equal(ws.protocol, 'b');
      assert.equal(requests.at(-1)?.headers['sec-websocket-protocol'], 'a, b');
      const big = payload(MiB, 5);
      ws.send('hi');
      ws.send(Buffer.from([3, 4]));
      ws.send(big);
      ws.send('é'.repeat(MiB / 2));
      ws.send('fragments');
      await waitFor(() => count(log, 'message') === 6, 'six messages');
      const got = messages(log);
      assert.deepEqual([got[0].data.toString(), got[0].isBinary], ['hi', false]);
      assert.deepEqual([got[1].data.toString('hex'), got[1].isBinary], ['0304', true]);
      assert.ok(got[2].data.equals(big) && got[2].isBinary);
      assert.deepEqual([got[3].data.toString(), got[3].isBinary], ['é'.repeat(MiB / 2), false]);
      assert.deepEqual([got[4].data.toString(), got[4].isBinary], ['one two three', false]);
      assert.deepEqual([got[5].data.toString('hex'), got[5].isBinary], ['0102', true]);
      assert.equal((log.find((e) => e[0] === 'ping')?.[1] as Buffer).toString(), 'between');
      ws.close(1000, 'bye');
      await waitFor(() => count(log, 'close') === 1, 'close');
      assert.deepEqual(log.at(-1), ['close', 1000, 'bye']);
      await waitFor(() => serverCloses.length > 0, 'server close');
      assert.deepEqual(serverCloses.at(-1), { code: 1000, reason: 'bye' });
      assert.equal(count(log, 'error'), 0);
    });

    test('WebSocketClient: ping and pong both ways, and a close started by the server', GUARD, async () => {
      const ws = new WebSocketClient(url, undefined, { backend });
      const log = record(ws);
      await waitFor(() => count(log, 'open') === 1, 'open');
      assert.equal(ws.protocol, '');
      ws.ping('from c1m');
      await waitFor(() => count(log, 'pong') === 1, 'pong');
      assert.equal((log.find((e) => e[0] === 'pong')![1] as Buffer).toString(), 'from c1m');
      assert.equal(serverPings.at(-1), 'from c1m');
      ws.send('ping-me');
      await waitFor(() => count(log, 'ping') === 1, 'ping');
      assert.equal((log.find((e) => e[0] === 'ping')![1] as Buffer).toString(), 'from ws server');
      const closesBefore = serverCloses.length;
      ws.send('close-please');
      await waitFor(() => count(log, 'close') === 1, 'close');
      assert.deepEqual(log.at(-1), ['close', 4200, 'ws server bye']);
      await waitFor(() => serverCloses.length > closesBefore, 'server close');
      assert.deepEqual(serverCloses.at(-1), { code: 4200, reason: 'ws server bye' });
    });

    test('low-level client: 200 connections echo text and binary, then close with a code', GUARD, async () => {
      const N = 200;
      const got = new Map<number, string[]>();
      const closed: { code: number; reason: string }[] = [];
      const errors: Error[] = [];
      const done = deferred();
      const handler: WebSocketClientHandler<number> = createWebSocketClientHandler<number>({
        onOpen(ws) {
          ws.send(`text ${ws.data}`);
          ws.send(Buffer.from(`bin ${ws.data}`));
        },
        onMessage(ws, data, isBinary) {
          const list = got.get(ws.data) ?? [];
          list.push(`${isBinary ? 'B' : 'T'}:${data.toString()}`);
          got.set(ws.data, list);
          if (list.length === 2) ws.close(4001, `done ${ws.data}`);
        },
        onError: (_ws, err) => errors.push(err),
        onClose(_ws: ClientWebSocket<number>, code, reason) {
          closed.push({ code, reason });
          if (closed.length === N) done.resolve();
        },
      });
      const reactor: Reactor = createReactor(handler, { backend, timerResolution: 20 });
      try {
        const closesBefore = serverCloses.length;
        for (let i = 0; i < N; i++) handler.connect(reactor, url, { data: i, protocols: ['b'] });
        await done.promise;
        assert.deepEqual(errors, []);
        for (let i = 0; i < N; i++) assert.deepEqual(got.get(i), [`T:text ${i}`, `B:bin ${i}`]);
        assert.ok(closed.every((c) => c.code === 4001 && c.reason.startsWith('done ')));
        await waitFor(() => serverCloses.length >= closesBefore + N, 'server closes');
      } finally {
        await reactor.close(200);
      }
    });
  });
}

/** A `ws` echo server with `perMessageDeflate` options; 'fragments' and 'big:<n>' are commands. */
interface DeflateWss {
  url: string;
  /** Each connection's request and TCP socket (bytes on the wire). */
  conns: { req: IncomingMessage; socket: Socket; closes: number[] }[];
  close(): Promise<void>;
}

async function deflateWss(perMessageDeflate: WsServerOptions['perMessageDeflate']): Promise<DeflateWss> {
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate });
  await new Promise((r) => wss.once('listening', r));
  const conns: DeflateWss['conns'] = [];
  wss.on('connection', (ws, req) => {
    const conn = { req, socket: req.socket, closes: [] as number[] };
    conns.push(conn);
    ws.on('close', (code) => conn.closes.push(code));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString();
      if (text === 'fragments') {
        ws.send('one '.repeat(300), { fin: false });
        ws.send('two '.repeat(300), { fin: false });
        ws.send('three', { fin: true });
      } else if (text.startsWith('big:')) {
        ws.send(Buffer.alloc(Number(text.slice(4)), 1));
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
  });
  return {
    url: `ws://${HOST}:${(wss.address() as { port: number }).port}/deflate`,
    conns,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

type WsServerOptions = ConstructorParameters<typeof WebSocketServer>[0] & {};

/** Compressible text and binary (JSON-like, with multi-byte characters) of about `size` bytes. */
function compressible(size: number): string {
  return '{"user":"é€","seq":12345,"ok":true} 😀 '.repeat(Math.ceil(size / 40) + 1).slice(0, size);
}

for (const backend of backends) {
  describe(`c1m client with permessage-deflate -> ws server with it (${backend})`, () => {
    let nct: DeflateWss;
    let takeover: DeflateWss;
    let declines: DeflateWss;
    let refuses: DeflateWss;
    let smallWindow: DeflateWss;
    before(async () => {
      // ws's defaults take context over both ways unless the client asks otherwise.
      takeover = await deflateWss({ threshold: 0 });
      nct = await deflateWss({ threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true });
      declines = await deflateWss(false);
      // ws answers 400 to an offer asking for server_no_context_takeover when told to take over.
      refuses = await deflateWss({ threshold: 0, serverNoContextTakeover: false });
      smallWindow = await deflateWss({ threshold: 0, clientMaxWindowBits: 10 });
    });
    after(async () => {
      await takeover?.close();
      await nct?.close();
      await declines?.close();
      await refuses?.close();
      await smallWindow?.close();
    });

    /** Echo each message through a WebSocketClient, in order; returns the plain bytes sent. */
    async function echo(ws: WebSocketClient, log: unknown[][], sent: (string | Buffer)[]): Promise<number> {
      const before = count(log, 'message');
      for (const m of sent) ws.send(m);
      await waitFor(() => count(log, 'message') >= before + sent.length || count(log, 'close') > 0, `${sent.length} echoes`);
      assert.equal(count(log, 'close'), 0, JSON.stringify(log.filter((e) => e[0] !== 'message')));
      const got = messages(log).slice(before);
      for (let i = 0; i < sent.length; i++) {
        const m = sent[i];
        assert.equal(got[i].isBinary, typeof m !== 'string', `message ${i} kind`);
        assert.ok(got[i].data.equals(typeof m === 'string' ? Buffer.from(m) : m), `message ${i} (${Buffer.byteLength(m)} bytes)`);
      }
      return sent.reduce((n, m) => n + Buffer.byteLength(m), 0);
    }

    async function open(url: string, options: ConstructorParameters<typeof WebSocketClient>[2]): Promise<{ ws: WebSocketClient; log: unknown[][] }> {
      const ws = new WebSocketClient(url, undefined, { backend, ...options });
      const log = record(ws);
      await waitFor(() => count(log, 'open') === 1 || count(log, 'close') === 1, 'open');
      assert.equal(count(log, 'open'), 1, JSON.stringify(log));
      return { ws, log };
    }

    const MIXED = [compressible(100), Buffer.alloc(5000, 3), compressible(70_000), Buffer.concat([Buffer.alloc(200_000, 9), payload(50_000, 2)]), compressible(MiB), ''];

    test('WebSocketClient, default offer: no context takeover either way; text, binary, large, fragmented, compressed on the wire', GUARD, async () => {
      for (const server of [takeover, nct]) {
        const { ws, log } = await open(server.url, { perMessageDeflate: true, maxPayload: 2 * MiB });
        const conn = server.conns.at(-1)!;
        assert.equal(conn.req.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits');
        assert.equal(ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
        const read0 = conn.socket.bytesRead;
        const written0 = conn.socket.bytesWritten;
        const plain = await echo(ws, log, MIXED);
        assert.ok(conn.socket.bytesRead - read0 < plain * 0.5, `the server read ${conn.socket.bytesRead - read0} bytes for ${plain}`);
        assert.ok(conn.socket.bytesWritten - written0 < plain * 0.5, `the server wrote ${conn.socket.bytesWritten - written0} bytes for ${plain}`);
        ws.send('fragments');
        await waitFor(() => count(log, 'message') === MIXED.length + 1, 'the fragmented message');
        assert.equal(messages(log).at(-1)!.data.toString(), 'one '.repeat(300) + 'two '.repeat(300) + 'three');
        ws.close(1000, 'bye');
        await waitFor(() => count(log, 'close') === 1, 'close');
        assert.deepEqual(log.at(-1), ['close', 1000, 'bye']);
        assert.equal(count(log, 'error'), 0);
      }
    });

    test('low-level client with context takeover both ways: repeats cost a few bytes', GUARD, async () => {
      const got: { data: Buffer; isBinary: boolean }[] = [];
      const errors: string[] = [];
      let extensions = '';
      const handler = createWebSocketClientHandler({
        perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 },
        maxPayload: 2 * MiB,
        onOpen: (ws) => void (extensions = ws.extensions),
        onMessage: (_ws, data, isBinary) => void got.push({ data: Buffer.from(data), isBinary }),
        onError: (_ws, err) => void errors.push(err.code),
      });
      const reactor = createReactor(handler, { backend, timerResolution: 20 });
      try {
        const ws = handler.connect(reactor, takeover.url);
        await waitFor(() => extensions !== '' || errors.length > 0, 'open');
        assert.equal(extensions, 'permessage-deflate');
        assert.equal(takeover.conns.at(-1)!.req.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
        const noise = randomBytes(6000).toString('base64');
        const sent: (string | Buffer)[] = [...MIXED, noise, noise, Buffer.from(noise), 'fragments', noise];
        for (const m of sent) ws.send(m);
        await waitFor(() => got.length >= sent.length || errors.length > 0, 'every echo');
        assert.deepEqual(errors, []);
        for (let i = 0; i < sent.length; i++) {
          const m = sent[i];
          const want = m === 'fragments' ? 'one '.repeat(300) + 'two '.repeat(300) + 'three' : m;
          assert.ok(got[i].data.equals(typeof want === 'string' ? Buffer.from(want) : want), `message ${i}`);
        }
        const conn = takeover.conns.at(-1)!;
        const read0 = conn.socket.bytesRead;
        const written0 = conn.socket.bytesWritten;
        ws.send(noise);
        await waitFor(() => got.length === sent.length + 1, 'one more echo');
        assert.ok(conn.socket.bytesRead - read0 < 100, `a repeat sent as ${conn.socket.bytesRead - read0} bytes`);
        assert.ok(conn.socket.bytesWritten - written0 < 100, `a repeat echoed as ${conn.socket.bytesWritten - written0} bytes`);
        ws.close(1000);
        await waitFor(() => conn.closes.length === 1, 'server close');
        assert.deepEqual(conn.closes, [1000]);
      } finally {
        await reactor.close(200);
      }
    });

    test('a ws server limiting the client window to 10 bits: agreed, and what we send inflates there', GUARD, async () => {
      const { ws, log } = await open(smallWindow.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 2 * MiB });
      assert.equal(ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10');
      // ws inflates what we send with the 10-bit window it asked for. (zlib's inflate does not
      // refuse a distance past its window within one call, so this checks the agreement and
      // the interop, not the window we compress with: the unit tests do, in ws-deflate.test.ts.)
      await echo(ws, log, MIXED);
      ws.close(1000);
      await waitFor(() => count(log, 'close') === 1, 'close');
      assert.deepEqual(log.at(-1), ['close', 1000, '']);
    });

    test('a ws server that refuses our offer answers 400; an offer allowing server takeover is accepted', GUARD, async () => {
      const ws = new WebSocketClient(refuses.url, undefined, { backend, perMessageDeflate: true });
      const log = record(ws);
      await waitFor(() => count(log, 'close') === 1, 'close');
      assert.deepEqual(log, [['error', 'ERR_C1M_WS_HANDSHAKE_STATUS'], ['close', 1006, '']]);
      const ok = await open(refuses.url, { perMessageDeflate: { serverNoContextTakeover: false } });
      assert.equal(ok.ws.extensions, 'permessage-deflate; client_no_context_takeover');
      await echo(ok.ws, ok.log, [compressible(20_000), compressible(20_000), Buffer.alloc(3000)]);
      ok.ws.terminate();
      await waitFor(() => count(ok.log, 'close') === 1, 'close');
    });

    test('a ws server without permessage-deflate declines: no extension, plain frames', GUARD, async () => {
      const { ws, log } = await open(declines.url, { perMessageDeflate: true });
      assert.equal(ws.extensions, '');
      assert.notEqual(declines.conns.at(-1)!.req.headers['sec-websocket-extensions'], undefined, 'offered');
      const conn = declines.conns.at(-1)!;
      const read0 = conn.socket.bytesRead;
      const plain = await echo(ws, log, [compressible(10_000), Buffer.alloc(10_000)]);
      assert.ok(conn.socket.bytesRead - read0 >= plain, `uncompressed: ${conn.socket.bytesRead - read0} bytes for ${plain}`);
      ws.terminate();
      await waitFor(() => count(log, 'close') === 1, 'close');
    });

    test('a compressed message from ws inflating past maxPayload: 1009', GUARD, async () => {
      const { ws, log } = await open(nct.url, { perMessageDeflate: true, maxPayload: 64 * 1024 });
      await echo(ws, log, [Buffer.alloc(64 * 1024, 1)]);
      const conn = nct.conns.at(-1)!;
      ws.send(`big:${64 * 1024 + 1}`);
      await waitFor(() => count(log, 'close') === 1, 'close');
      assert.deepEqual(log.filter((e) => e[0] === 'error' || e[0] === 'close'), [['error', 'ERR_C1M_WS_MESSAGE_TOO_BIG'], ['close', 1009, '']]);
      await waitFor(() => conn.closes.length === 1, 'server close');
      assert.deepEqual(conn.closes, [1009]);
    });

    test('bad perMessageDeflate options throw at construction', () => {
      assert.throws(() => new WebSocketClient(nct.url, undefined, { backend, perMessageDeflate: 'on' as unknown as boolean }), { code: 'ERR_C1M_INVALID_OPTION', message: /perMessageDeflate/ });
      assert.throws(() => new WebSocketClient(nct.url, undefined, { backend, perMessageDeflate: { serverMaxWindowBits: 8 } }), { code: 'ERR_C1M_INVALID_OPTION', message: /serverMaxWindowBits/ });
    });
  });
}

/**
 * Interop with the `ws` package in both directions, on every backend: the `ws` client against
 * the c1m server, and the c1m client (both levels) against `ws`'s WebSocketServer. Text,
 * binary, fragmented messages, ping/pong, close codes and reasons, large messages, and
 * subprotocol selection.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
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

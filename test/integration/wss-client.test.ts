/**
 * `wss:` in the WebSocket client on every backend: against c1m's own WebSocket server over TLS
 * and the `ws` package's server on node:https. Text and binary round trips, the server name
 * from the URL (connecting to `address`), TLS sessions resumed across connects (one derived
 * options object per server name), an untrusted server refused with ERR_C1M_TLS*, and the
 * `ws`-like `WebSocketClient` over wss:.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import {
  createReactor,
  createWebSocketClientHandler,
  createWebSocketHandler,
  WebSocketClient,
  type ClientWebSocket,
  type Reactor,
  type TlsConnectOptions,
  type WsClientError,
} from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, within, type Deferred } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();

interface Pending {
  open: Deferred<void>;
  messages: { data: Buffer; isBinary: boolean }[];
  next: (() => void) | undefined;
  closed: Deferred<number>;
  error: WsClientError | undefined;
}

for (const backend of backends) {
  describe(`wss: WebSocket client (${backend})`, () => {
    const pending = new Map<number, Pending>();
    const serverErrors: Error[] = [];
    let client: Reactor;
    let handler: ReturnType<typeof createWebSocketClientHandler>;
    let c1m: Reactor;
    let c1mPort = 0;
    let https: HttpsServer;
    let wsServer: WebSocketServer;
    let wsPort = 0;

    before(async () => {
      handler = createWebSocketClientHandler({
        onOpen: (ws) => pending.get(ws.id)?.open.resolve(),
        onMessage: (ws, data, isBinary) => {
          const p = pending.get(ws.id);
          p?.messages.push({ data: Buffer.from(data), isBinary });
          p?.next?.();
        },
        onError: (ws, err) => void (pending.get(ws.id)!.error = err),
        onClose: (ws, code) => pending.get(ws.id)?.closed.resolve(code),
      });
      client = createReactor(handler, { backend });
      c1m = createReactor(createWebSocketHandler({ onMessage: (ws, data, isBinary) => void ws.send(data, isBinary) }), { backend, onError: (e) => serverErrors.push(e) });
      c1mPort = (await c1m.listen({ host: HOST, port: 0, tls: { cert: certs.server.cert, key: certs.server.key } })).port;
      https = createHttpsServer({ cert: certs.server.cert, key: certs.server.key });
      wsServer = new WebSocketServer({ server: https });
      wsServer.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      await new Promise<void>((r) => https.listen(0, HOST, () => r()));
      wsPort = (https.address() as AddressInfo).port;
    });
    after(async () => {
      await client?.close(1000);
      await c1m?.close(1000);
      for (const ws of wsServer?.clients ?? []) ws.terminate();
      await new Promise((r) => wsServer?.close(r));
      await new Promise((r) => https?.close(r));
    });

    function open(url: string, tls?: TlsConnectOptions): { ws: ClientWebSocket; p: Pending } {
      const ws = handler.connect(client, url, { address: HOST, tls });
      const p: Pending = { open: deferred(), messages: [], next: undefined, closed: deferred(), error: undefined };
      p.open.promise.catch(() => {});
      pending.set(ws.id, p);
      return { ws, p };
    }

    async function reply(p: Pending, n: number): Promise<void> {
      while (p.messages.length < n) {
        const d = deferred();
        p.next = d.resolve;
        await within(d.promise, 'the echo');
      }
    }

    /** Open, echo a text and a binary message, close with 1000: the TLS facts of the connection. */
    async function roundTrip(url: string, tls?: TlsConnectOptions): Promise<{ resumed: boolean; protocol: string }> {
      const { ws, p } = open(url, tls);
      await within(p.open.promise, 'onOpen');
      const info = ws.tls;
      assert.ok(info, 'ws.tls on a wss: WebSocket');
      const binary = Buffer.from([0, 1, 2, 0xff, 0xfe]);
      ws.send('héllo over TLS');
      ws.send(binary);
      const big = Buffer.alloc(200_000, 7);
      ws.send(big);
      await reply(p, 3);
      assert.deepEqual(p.messages[0], { data: Buffer.from('héllo over TLS'), isBinary: false });
      assert.deepEqual(p.messages[1], { data: binary, isBinary: true });
      assert.equal(p.messages[2]!.data.equals(big), true);
      ws.close(1000, 'done');
      assert.equal(await within(p.closed.promise, 'onClose'), 1000);
      assert.equal(p.error, undefined);
      assert.equal(ws.tls, undefined, 'no TLS facts after the close');
      return { resumed: info.resumed, protocol: info.protocol };
    }

    const servers: [string, () => number][] = [['c1m', () => c1mPort], ['ws on node:https', () => wsPort]];
    for (const [name, port] of servers) {
      test(`${name}: wss://localhost echoes text and binary; the next connects resume the TLS session`, GUARD, async () => {
        const errorsBefore = serverErrors.length;
        const tls: TlsConnectOptions = { ca: certs.ca };
        const url = `wss://localhost:${port()}/chat`;
        const first = await roundTrip(url, tls);
        assert.equal(first.resumed, false);
        assert.match(first.protocol, /^TLSv1\.[23]$/);
        assert.equal((await roundTrip(url, tls)).resumed, true, 'one options object per server name: the session is kept');
        assert.equal((await roundTrip(url, { ...tls, resume: false })).resumed, false);
        assert.deepEqual(serverErrors.slice(errorsBefore), []);
      });

      test(`${name}: a server the CA does not trust, or a name it is not for, fails with ERR_C1M_TLS*`, GUARD, async () => {
        const untrusted = open(`wss://localhost:${port()}/`, { ca: certs.rogueCa });
        assert.equal(await within(untrusted.p.closed.promise, 'onClose'), 1006);
        assert.match(untrusted.p.error?.code ?? '', /^ERR_C1M_TLS/);
        assert.match(untrusted.p.error!.message, /certificate|verify|issuer/i);
        const misnamed = open(`wss://other.test:${port()}/`, { ca: certs.ca }); // connects to 127.0.0.1 (address)
        assert.equal(await within(misnamed.p.closed.promise, 'onClose'), 1006);
        assert.match(misnamed.p.error?.code ?? '', /^ERR_C1M_TLS/);
        const insecure = await roundTrip(`wss://other.test:${port()}/`, { ca: certs.rogueCa, rejectUnauthorized: false });
        assert.equal(insecure.resumed, false);
      });
    }

    test('WebSocketClient (the ws-like API) over wss:', GUARD, async () => {
      const ws = new WebSocketClient(`wss://localhost:${c1mPort}/x`, undefined, { backend, tls: { ca: certs.ca } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const got = new Promise<[Buffer, boolean]>((r) => ws.once('message', (d: Buffer, isBinary: boolean) => r([d, isBinary])));
      ws.send('via WebSocketClient');
      const [data, isBinary] = await within(got, 'the echo');
      assert.equal(data.toString(), 'via WebSocketClient');
      assert.equal(isBinary, false);
      const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
      ws.close(1000);
      assert.equal(await within(closed, 'close'), 1000);
    });
  });
}

/**
 * The WebSocket client on every backend: against the c1m server (echo of every length class,
 * ping/pong, close codes both ways, many connections), against raw node:net servers speaking
 * byte fixtures (the request it sends, fragments split at every byte, masking, bad handshake
 * answers, protocol errors, timeouts, backpressure, permessage-deflate: the offer, answers
 * declined or invalid, compressed frames both ways, split at every byte, with and without
 * context takeover), and the `ws`-like `WebSocketClient`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  createReactor,
  createWebSocketClientHandler,
  createWebSocketHandler,
  WebSocketClient,
  type ClientWebSocket,
  type EngineOptions,
  type Reactor,
  type WebSocket,
  type WebSocketClientHandler,
  type WebSocketClientHandlerOptions,
  type WebSocketServerOptions,
  type WsClientError,
} from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { frame as wsFrame } from '../helpers/ws-frames.js';
import { GUARD, HOST, deferred, payload, startServer, waitFor, within, type TestServer } from '../helpers/net.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const accept = (key: string): string => createHash('sha1').update(key + GUID).digest('base64');

/** An unmasked server frame (or masked, to test that the client refuses it). */
const frame = (opcode: number, data: Uint8Array | string, opts: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Buffer =>
  wsFrame(opcode, data, { mask: false, ...opts });

interface ClientFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  key: string;
  payload: Buffer;
}

/** Client frames in `buf`, unmasked. */
function parseClientFrames(buf: Buffer): ClientFrame[] {
  const out: ClientFrame[] = [];
  let p = 0;
  while (buf.length - p >= 2) {
    const masked = (buf[p + 1] & 0x80) !== 0;
    let len = buf[p + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      if (buf.length - p < 4) break;
      len = buf.readUInt16BE(p + 2);
      h = 4;
    } else if (len === 127) {
      if (buf.length - p < 10) break;
      len = Number(buf.readBigUInt64BE(p + 2));
      h = 10;
    }
    const keyAt = p + h;
    if (masked) h += 4;
    if (buf.length - p < h + len) break;
    const body = Buffer.from(buf.subarray(p + h, p + h + len));
    if (masked) for (let i = 0; i < len; i++) body[i] ^= buf[keyAt + (i & 3)];
    out.push({ fin: (buf[p] & 0x80) !== 0, rsv1: (buf[p] & 0x40) !== 0, opcode: buf[p] & 0x0f, masked, key: masked ? buf.subarray(keyAt, keyAt + 4).toString('hex') : '', payload: body });
    p += h + len;
  }
  return out;
}

/** One connection to a raw server: the request head, and every byte after it. */
interface RawPeer {
  socket: Socket;
  request: string;
  key: string;
  after: Buffer[];
  ended: boolean;
  closed: boolean;
  frames(): ClientFrame[];
}

interface RawServer {
  port: number;
  peers: RawPeer[];
  close(): void;
}

/** A node:net server calling `onRequest` once each connection's request head is complete. */
async function rawServer(onRequest: (peer: RawPeer) => unknown, onConnect?: (s: Socket) => void): Promise<RawServer> {
  const peers: RawPeer[] = [];
  const sockets = new Set<Socket>();
  const srv: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnect?.(socket);
    let head = Buffer.alloc(0);
    let peer: RawPeer | undefined;
    socket.on('data', (d: Buffer) => {
      if (peer !== undefined) {
        peer.after.push(d);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const request = head.subarray(0, end).toString('latin1');
      const p: RawPeer = {
        socket,
        request,
        key: /\r\nsec-websocket-key: *([^\r]*)/i.exec(request)?.[1] ?? '',
        after: [head.subarray(end + 4)],
        ended: false,
        closed: false,
        frames: () => parseClientFrames(Buffer.concat(p.after)),
      };
      peer = p;
      peers.push(p);
      socket.on('end', () => (p.ended = true));
      socket.on('close', () => (p.closed = true));
      void onRequest(p);
    });
  });
  await new Promise<void>((r) => srv.listen(0, HOST, r));
  return {
    port: (srv.address() as { port: number }).port,
    peers,
    close() {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

function response101(key: string, extra = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n${extra}\r\n`;
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const RSV1 = 0x40;
const NCT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

/** A compressed message payload (RFC 7692 7.2.1), made by zlib directly. */
function deflated(data: Uint8Array | string): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: zc.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** Compressed payloads inflated as one stream (RFC 7692 7.2.2; with context takeover, in order). */
function inflatedStream(payloads: Buffer[], windowBits = 15): Buffer {
  return inflateRawSync(Buffer.concat(payloads.flatMap((p) => [p, TAIL])), { windowBits, finishFlush: zc.Z_SYNC_FLUSH });
}

/** Write `bytes` one at a time, yielding between writes. */
async function dribble(socket: Socket, bytes: Buffer, step = 1): Promise<void> {
  for (let i = 0; i < bytes.length; i += step) {
    socket.write(bytes.subarray(i, i + step));
    await new Promise((r) => setImmediate(r));
  }
}

/** A client reactor whose handler records every event. */
class Harness {
  readonly opens: ClientWebSocket[] = [];
  readonly messages: { ws: ClientWebSocket; data: Buffer; isBinary: boolean }[] = [];
  readonly pings: string[] = [];
  readonly pongs: string[] = [];
  readonly closes: { ws: ClientWebSocket; code: number; reason: string }[] = [];
  readonly errors: { ws: ClientWebSocket; err: WsClientError }[] = [];
  readonly engineErrors: Error[] = [];
  drains = 0;
  readonly handler: WebSocketClientHandler;
  readonly reactor: Reactor;

  constructor(backend: BackendName, opts: WebSocketClientHandlerOptions = {}, engine: EngineOptions = {}) {
    this.handler = createWebSocketClientHandler({
      ...opts,
      onOpen: (ws) => {
        this.opens.push(ws);
        opts.onOpen?.(ws);
      },
      onMessage: (ws, data, isBinary) => {
        this.messages.push({ ws, data: Buffer.from(data), isBinary });
        opts.onMessage?.(ws, data, isBinary);
      },
      onPing: (ws, data) => {
        this.pings.push(Buffer.from(data).toString());
        opts.onPing?.(ws, data);
      },
      onPong: (ws, data) => {
        this.pongs.push(Buffer.from(data).toString());
        opts.onPong?.(ws, data);
      },
      onDrain: (ws) => {
        this.drains++;
        opts.onDrain?.(ws);
      },
      onError: (ws, err) => {
        this.errors.push({ ws, err });
        opts.onError?.(ws, err);
      },
      onClose: (ws, code, reason) => {
        this.closes.push({ ws, code, reason });
        opts.onClose?.(ws, code, reason);
      },
    });
    this.reactor = createReactor(this.handler, { timerResolution: 20, onError: (e) => this.engineErrors.push(e), ...engine, backend });
  }

  connect(url: string, options?: Parameters<WebSocketClientHandler['connect']>[2]): ClientWebSocket {
    return this.handler.connect(this.reactor, url, options);
  }

  async opened(ws: ClientWebSocket): Promise<void> {
    await waitFor(() => this.hasOpened(ws) || this.closeOf(ws) !== undefined, 'open');
    assert.ok(this.hasOpened(ws), `not opened: ${this.errors.find((e) => e.ws.id === ws.id)?.err.message}`);
  }

  /** Handles are made per callback: a WebSocket is known by its id. */
  hasOpened(ws: ClientWebSocket): boolean {
    return this.opens.some((o) => o.id === ws.id);
  }

  closeOf(ws: ClientWebSocket): { code: number; reason: string } | undefined {
    const c = this.closes.find((x) => x.ws.id === ws.id);
    return c && { code: c.code, reason: c.reason };
  }

  async closed(ws: ClientWebSocket): Promise<{ code: number; reason: string }> {
    await waitFor(() => this.closeOf(ws) !== undefined, 'client onClose');
    return this.closeOf(ws)!;
  }

  errorOf(ws: ClientWebSocket): WsClientError | undefined {
    const all = this.errors.filter((e) => e.ws.id === ws.id);
    assert.ok(all.length <= 1, 'onError at most once');
    return all[0]?.err;
  }

  messagesOf(ws: ClientWebSocket): { data: Buffer; isBinary: boolean }[] {
    return this.messages.filter((m) => m.ws.id === ws.id);
  }

  close(): Promise<void> {
    return this.reactor.close(200);
  }
}

interface WsServerCtx {
  srv: TestServer;
  url: string;
  sockets: WebSocket[];
  closes: { ws: WebSocket; code: number; reason: string }[];
  pongs: string[];
  pings: string[];
}

async function wsServer(backend: BackendName, opts: WebSocketServerOptions = {}): Promise<WsServerCtx> {
  const ctx = { sockets: [] as WebSocket[], closes: [] as WsServerCtx['closes'], pongs: [] as string[], pings: [] as string[] };
  const handler = createWebSocketHandler({
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
    onPing(_ws, data) {
      ctx.pings.push(Buffer.from(data).toString());
    },
    onPong(_ws, data) {
      ctx.pongs.push(Buffer.from(data).toString());
    },
    ...opts,
    onOpen(ws) {
      ctx.sockets.push(ws);
      opts.onOpen?.(ws);
    },
    onClose(ws, code, reason) {
      ctx.closes.push({ ws, code, reason });
      opts.onClose?.(ws, code, reason);
    },
  });
  const srv = await startServer(backend, handler, { timerResolution: 20 });
  return { ...ctx, srv, url: `ws://${HOST}:${srv.port}/echo` };
}

/** A text of exactly `size` UTF-8 bytes, with 2-, 3- and 4-byte characters. */
function textOf(size: number): string {
  return 'é€😀ab'.repeat(Math.floor(size / 11)) + 'a'.repeat(size % 11);
}

const SIZES = [0, 125, 126, 65_535, 65_536, 1024 * 1024];

for (const backend of backends) {
  describe(`websocket client (${backend})`, () => {
    let server: WsServerCtx;
    let h: Harness;
    before(async () => {
      server = await wsServer(backend, { protocols: ['chat.v2', 'chat.v1'] });
      h = new Harness(backend);
    });
    after(async () => {
      await h?.close();
      await server?.srv.reactor.close(200);
    });

    test('echoes binary and text of 0, 125, 126, 65535, 65536 and 1 MiB bytes', GUARD, async () => {
      const ws = h.connect(server.url);
      assert.equal(ws.readyState, 'connecting');
      assert.equal(ws.send('too early'), false, 'nothing is sent before the 101');
      await h.opened(ws);
      assert.equal(ws.readyState, 'open');
      assert.equal(ws.protocol, '');
      const expected: { data: Buffer; isBinary: boolean }[] = [];
      for (const size of SIZES) {
        const bin = payload(size, size + 7);
        const text = textOf(size);
        ws.send(bin);
        ws.send(text);
        expected.push({ data: bin, isBinary: true }, { data: Buffer.from(text), isBinary: false });
      }
      await waitFor(() => h.messagesOf(ws).length >= expected.length, 'every echo');
      const got = h.messagesOf(ws);
      assert.equal(got.length, expected.length);
      for (let i = 0; i < expected.length; i++) {
        assert.equal(got[i].isBinary, expected[i].isBinary, `message ${i} kind`);
        assert.ok(got[i].data.equals(expected[i].data), `message ${i} (${expected[i].data.length} bytes)`);
      }
      ws.close(1000, 'done');
      assert.equal(ws.readyState, 'closing');
      assert.deepEqual(await h.closed(ws), { code: 1000, reason: 'done' });
      assert.equal(ws.readyState, 'closed');
      assert.equal(ws.send('late'), false);
      assert.equal(h.errorOf(ws), undefined);
    });

    test('sends the RFC 6455 request and processes frames behind the 101 in the same read', GUARD, async () => {
      const raw = await rawServer((peer) => {
        peer.socket.write(Buffer.concat([Buffer.from(response101(peer.key, 'Sec-WebSocket-Protocol: b\r\n')), frame(1, 'hello'), frame(2, Buffer.from([7]))]));
      });
      try {
        const ws = h.connect(`ws://${HOST}:${raw.port}/path/x?q=1&r=%20`, {
          protocols: ['a', 'b'],
          origin: 'http://example.test',
          headers: { 'X-Trace': 'abc 123' },
        });
        await h.opened(ws);
        assert.equal(ws.protocol, 'b');
        await waitFor(() => h.messagesOf(ws).length === 2, 'the frames behind the head');
        assert.deepEqual(h.messagesOf(ws).map((m) => [m.data.toString('hex'), m.isBinary]), [[Buffer.from('hello').toString('hex'), false], ['07', true]]);
        const req = raw.peers[0].request;
        const lines = req.split('\r\n');
        assert.equal(lines[0], 'GET /path/x?q=1&r=%20 HTTP/1.1');
        const fields = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        assert.equal(fields.get('host'), `${HOST}:${raw.port}`);
        assert.equal(fields.get('upgrade'), 'websocket');
        assert.equal(fields.get('connection'), 'Upgrade');
        assert.equal(fields.get('sec-websocket-version'), '13');
        assert.equal(fields.get('sec-websocket-protocol'), 'a, b');
        assert.equal(fields.get('origin'), 'http://example.test');
        assert.equal(fields.get('x-trace'), 'abc 123');
        const key = fields.get('sec-websocket-key')!;
        assert.equal(Buffer.from(key, 'base64').length, 16);
        assert.equal(Buffer.from(key, 'base64').toString('base64'), key);
        // A second connection uses another key.
        const ws2 = h.connect(`ws://${HOST}:${raw.port}/`, { protocols: ['b'] });
        await h.opened(ws2);
        assert.notEqual(raw.peers[1].key, key);
        ws.terminate();
        ws2.terminate();
        await h.closed(ws);
        await h.closed(ws2);
      } finally {
        raw.close();
      }
    });

    test('masks every frame with a fresh key', GUARD, async () => {
      const raw = await rawServer((peer) => peer.socket.write(response101(peer.key)));
      try {
        const ws = h.connect(`ws://${HOST}:${raw.port}/`);
        await h.opened(ws);
        const big = payload(70_000, 3);
        ws.send('abc');
        ws.send('abc');
        ws.send(Buffer.from('abc'));
        ws.send(big);
        ws.ping('p');
        ws.pong('q');
        ws.close(4321, 'r');
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === 7, 'seven frames');
        const f = peer.frames();
        assert.ok(f.every((x) => x.masked && x.fin), 'every frame masked and final');
        assert.equal(new Set(f.map((x) => x.key)).size, 7, 'seven distinct keys');
        assert.deepEqual(f.slice(0, 3).map((x) => [x.opcode, x.payload.toString()]), [[1, 'abc'], [1, 'abc'], [2, 'abc']]);
        assert.ok(f[3].payload.equals(big));
        assert.deepEqual(f.slice(4, 6).map((x) => [x.opcode, x.payload.toString()]), [[9, 'p'], [10, 'q']]);
        assert.equal(f[6].opcode, 8);
        assert.equal(f[6].payload.readUInt16BE(0), 4321);
        assert.equal(f[6].payload.subarray(2).toString(), 'r');
        ws.terminate();
        await h.closed(ws);
      } finally {
        raw.close();
      }
    });

    test('reassembles fragmented messages with control frames between fragments, split at every byte', GUARD, async () => {
      const big = [payload(40_000, 1), payload(30_000, 2), payload(5, 3)];
      const raw = await rawServer(async (peer) => {
        const word = Buffer.from('wörld'); // 'ö' is split across two fragments below
        const small = Buffer.concat([
          Buffer.from(response101(peer.key)),
          frame(1, 'Hel', { fin: false }),
          frame(9, 'p1'),
          frame(0, 'lo ', { fin: false }),
          frame(0, word.subarray(0, 2), { fin: false }),
          frame(10, 'unsolicited'),
          frame(0, word.subarray(2)),
          frame(2, Buffer.from([1, 2]), { fin: false }),
          frame(0, Buffer.from([3])),
          frame(1, ''),
        ]);
        await dribble(peer.socket, small);
        const large = Buffer.concat([frame(2, big[0], { fin: false }), frame(9, 'p2'), frame(0, big[1], { fin: false }), frame(0, big[2])]);
        await dribble(peer.socket, large, 997);
      });
      try {
        const ws = h.connect(`ws://${HOST}:${raw.port}/`);
        await waitFor(() => h.messagesOf(ws).length === 4, 'four messages');
        const got = h.messagesOf(ws);
        assert.deepEqual(got.slice(0, 3).map((m) => [m.data.toString('hex'), m.isBinary]), [
          [Buffer.from('Hello wörld').toString('hex'), false],
          ['010203', true],
          ['', false],
        ]);
        assert.equal(got[3].isBinary, true);
        assert.ok(got[3].data.equals(Buffer.concat(big)), 'the large fragmented message');
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === 2, 'two pongs');
        assert.deepEqual(peer.frames().map((x) => [x.opcode, x.payload.toString()]), [[10, 'p1'], [10, 'p2']]);
        ws.terminate();
        await h.closed(ws);
        assert.equal(h.errorOf(ws), undefined);
      } finally {
        raw.close();
      }
    });

    test('pings and pongs both ways', GUARD, async () => {
      const local = await wsServer(backend, { onOpen: (ws) => ws.ping('srv') });
      try {
        const pingsBefore = h.pings.length;
        const ws = h.connect(local.url);
        await h.opened(ws);
        await waitFor(() => h.pings.length > pingsBefore && local.pongs.length === 1, 'the server ping and our pong');
        assert.equal(h.pings.at(-1), 'srv');
        assert.deepEqual(local.pongs, ['srv']);
        const pongsBefore = h.pongs.length;
        assert.equal(ws.ping('cli'), true);
        await waitFor(() => h.pongs.length > pongsBefore, 'the server pong');
        assert.equal(h.pongs.at(-1), 'cli');
        assert.deepEqual(local.pings, ['cli']);
        assert.throws(() => ws.ping('x'.repeat(126)), { code: 'ERR_C1M_WS_INVALID_ARGUMENT' });
        ws.close();
        assert.equal((await h.closed(ws)).code, 1005);
      } finally {
        await local.srv.reactor.close(200);
      }
    });

    test('close codes and reasons in both directions; 1005 and 1006 reported', GUARD, async () => {
      const open = async (): Promise<{ ws: ClientWebSocket; peer: WebSocket }> => {
        const before = server.sockets.length;
        const ws = h.connect(server.url);
        await h.opened(ws);
        await waitFor(() => server.sockets.length > before, 'server open');
        return { ws, peer: server.sockets[server.sockets.length - 1] };
      };
      const serverClose = async (peer: WebSocket) => {
        await waitFor(() => server.closes.some((c) => c.ws.id === peer.id), 'server onClose');
        const c = server.closes.find((x) => x.ws.id === peer.id)!;
        return { code: c.code, reason: c.reason };
      };

      // Client starts: the server echoes code and reason.
      let { ws, peer } = await open();
      assert.throws(() => ws.close(1005), { code: 'ERR_C1M_WS_INVALID_ARGUMENT' });
      assert.throws(() => ws.close(1000, 'x'.repeat(124)), { code: 'ERR_C1M_WS_INVALID_ARGUMENT' });
      ws.close(4000, 'client bye');
      assert.deepEqual(await h.closed(ws), { code: 4000, reason: 'client bye' });
      assert.deepEqual(await serverClose(peer), { code: 4000, reason: 'client bye' });

      // Server starts: we echo.
      ({ ws, peer } = await open());
      peer.close(4001, 'server bye');
      assert.deepEqual(await h.closed(ws), { code: 4001, reason: 'server bye' });
      assert.deepEqual(await serverClose(peer), { code: 4001, reason: 'server bye' });

      // No code: 1005 on both sides.
      ({ ws, peer } = await open());
      ws.close();
      assert.equal((await h.closed(ws)).code, 1005);
      assert.equal((await serverClose(peer)).code, 1005);

      // The server resets: 1006.
      ({ ws, peer } = await open());
      peer.terminate();
      assert.deepEqual(await h.closed(ws), { code: 1006, reason: '' });

      // We reset: 1006 on both sides, no error.
      ({ ws, peer } = await open());
      ws.terminate();
      assert.equal((await h.closed(ws)).code, 1006);
      assert.equal((await serverClose(peer)).code, 1006);
      assert.equal(h.errorOf(ws), undefined);
    });

    const badResponses: { name: string; answer: (key: string) => string; code: string; status?: number; header?: [string, string]; options?: object }[] = [
      { name: 'a wrong Sec-WebSocket-Accept', answer: () => response101('AAAAAAAAAAAAAAAAAAAAAA=='), code: 'ERR_C1M_WS_HANDSHAKE_ACCEPT', status: 101 },
      { name: 'no Sec-WebSocket-Accept', answer: () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', code: 'ERR_C1M_WS_HANDSHAKE_ACCEPT' },
      { name: 'status 200', answer: () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Test: yes\r\n\r\nok', code: 'ERR_C1M_WS_HANDSHAKE_STATUS', status: 200, header: ['x-test', 'yes'] },
      { name: 'status 426', answer: () => 'HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n', code: 'ERR_C1M_WS_HANDSHAKE_STATUS', status: 426, header: ['sec-websocket-version', '13'] },
      { name: 'no Upgrade field', answer: (k) => `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, code: 'ERR_C1M_WS_HANDSHAKE_UPGRADE' },
      { name: 'Upgrade other than websocket', answer: (k) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, code: 'ERR_C1M_WS_HANDSHAKE_UPGRADE' },
      { name: 'no Connection: upgrade', answer: (k) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, code: 'ERR_C1M_WS_HANDSHAKE_CONNECTION' },
      { name: 'a subprotocol we did not offer', answer: (k) => response101(k, 'Sec-WebSocket-Protocol: z\r\n'), code: 'ERR_C1M_WS_HANDSHAKE_PROTOCOL', options: { protocols: ['a'] } },
      { name: 'a subprotocol when we offered none', answer: (k) => response101(k, 'Sec-WebSocket-Protocol: a\r\n'), code: 'ERR_C1M_WS_HANDSHAKE_PROTOCOL' },
      { name: 'two subprotocols', answer: (k) => response101(k, 'Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n'), code: 'ERR_C1M_WS_HANDSHAKE_PROTOCOL', options: { protocols: ['a', 'b'] } },
      { name: 'an extension we did not offer', answer: (k) => response101(k, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'), code: 'ERR_C1M_WS_HANDSHAKE_EXTENSION' },
      { name: 'a malformed status line', answer: () => 'HTTP/1.1 1O1 Switching\r\n\r\n', code: 'ERR_C1M_WS_HANDSHAKE_MALFORMED' },
      { name: '101 in HTTP/1.0', answer: (k) => response101(k).replace('HTTP/1.1', 'HTTP/1.0'), code: 'ERR_C1M_WS_HANDSHAKE_MALFORMED' },
      { name: 'a field line without a colon', answer: (k) => response101(k, 'Broken field\r\n'), code: 'ERR_C1M_WS_HANDSHAKE_MALFORMED' },
      { name: 'a head over maxHeaderBytes', answer: (k) => response101(k, `X-Pad: ${'p'.repeat(20_000)}\r\n`), code: 'ERR_C1M_WS_HANDSHAKE_MALFORMED' },
      { name: 'no answer before the server closes', answer: () => '', code: 'ERR_C1M_WS_HANDSHAKE_CLOSED' },
    ];

    test('fails the connection on every bad handshake answer, with a clear code', GUARD, async () => {
      const answers = new Map<string, (key: string) => string>();
      const raw = await rawServer((peer) => {
        const path = peer.request.split(' ')[1];
        const text = answers.get(path)!(peer.key);
        if (text === '') peer.socket.end();
        else peer.socket.end(text);
      });
      try {
        for (const [i, c] of badResponses.entries()) {
          answers.set(`/${i}`, c.answer);
          const ws = h.connect(`ws://${HOST}:${raw.port}/${i}`, c.options);
          const closed = await h.closed(ws);
          assert.deepEqual(closed, { code: 1006, reason: '' }, c.name);
          assert.ok(!h.hasOpened(ws), `${c.name}: never opened`);
          const err = h.errorOf(ws) as WsClientError & { status?: number; headers?: Record<string, string> };
          assert.equal(err?.code, c.code, `${c.name}: ${err?.message}`);
          if (c.status !== undefined) assert.equal(err.status, c.status, c.name);
          if (c.header) assert.equal(err.headers?.[c.header[0]], c.header[1], c.name);
          assert.equal(ws.readyState, 'closed');
        }
      } finally {
        raw.close();
      }
    });

    const protocolErrors: { name: string; frames: Buffer; code: string; close: number; options?: WebSocketClientHandlerOptions }[] = [
      { name: 'a masked frame', frames: frame(1, 'hi', { mask: true }), code: 'ERR_C1M_WS_UNEXPECTED_MASK', close: 1002 },
      { name: 'a reserved bit', frames: frame(1, 'hi', { rsv: 0x40 }), code: 'ERR_C1M_WS_RESERVED_BITS', close: 1002 },
      { name: 'invalid UTF-8 in a whole text frame', frames: frame(1, Buffer.from([0x61, 0xff, 0x62])), code: 'ERR_C1M_WS_INVALID_UTF8', close: 1007 },
      { name: 'invalid UTF-8 across fragments', frames: Buffer.concat([frame(1, Buffer.from([0x68, 0xc3]), { fin: false }), frame(0, Buffer.from([0x28]))]), code: 'ERR_C1M_WS_INVALID_UTF8', close: 1007 },
      { name: 'a message over maxPayload', frames: frame(2, payload(2000)), code: 'ERR_C1M_WS_MESSAGE_TOO_BIG', close: 1009, options: { maxPayload: 1000 } },
    ];

    for (const c of protocolErrors) {
      test(`fails with ${c.close} on ${c.name}: masked close frame, then TCP close`, GUARD, async () => {
        const local = c.options ? new Harness(backend, c.options) : h;
        const raw = await rawServer((peer) => peer.socket.write(Buffer.concat([Buffer.from(response101(peer.key)), c.frames])));
        try {
          const ws = local.connect(`ws://${HOST}:${raw.port}/`);
          assert.deepEqual(await local.closed(ws), { code: c.close, reason: '' });
          assert.equal(local.errorOf(ws)?.code, c.code);
          assert.equal((local.errorOf(ws) as { closeCode?: number }).closeCode, c.close);
          assert.equal(local.messagesOf(ws).length, 0);
          const peer = raw.peers[0];
          await waitFor(() => peer.ended || peer.closed, 'the client closes TCP');
          const f = peer.frames();
          assert.equal(f.length, 1);
          assert.ok(f[0].masked);
          assert.equal(f[0].opcode, 8);
          assert.equal(f[0].payload.readUInt16BE(0), c.close);
        } finally {
          raw.close();
          if (local !== h) await local.close();
        }
      });
    }

    test('handshake timeout: from the handler, and per connect', GUARD, async () => {
      const local = new Harness(backend, { handshakeTimeout: 150 });
      const raw = await rawServer(() => {});
      try {
        const a = local.connect(`ws://${HOST}:${raw.port}/`);
        const b = local.connect(`ws://${HOST}:${raw.port}/`, { handshakeTimeout: 60_000 });
        assert.deepEqual(await local.closed(a), { code: 1006, reason: '' });
        assert.equal(local.errorOf(a)?.code, 'ERR_C1M_WS_HANDSHAKE_TIMEOUT');
        assert.equal(local.closeOf(b), undefined, 'the longer timeout still waits');
        assert.equal(b.readyState, 'connecting');
        b.close();
        assert.equal((await local.closed(b)).code, 1006);
        assert.equal(local.errorOf(b), undefined, 'closing while connecting is no error');
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('connection refused: onError with ECONNREFUSED, then onClose 1006', GUARD, async () => {
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, HOST, r));
      const port = (probe.address() as { port: number }).port;
      await new Promise((r) => probe.close(r));
      const ws = h.connect(`ws://${HOST}:${port}/`);
      assert.deepEqual(await h.closed(ws), { code: 1006, reason: '' });
      assert.equal(h.errorOf(ws)?.code, 'ECONNREFUSED');
    });

    test('backpressure: send returns false past the high-water mark, then onDrain', GUARD, async () => {
      const raw = await rawServer((peer) => {
        peer.socket.write(response101(peer.key));
        peer.socket.pause();
      });
      try {
        const drainsBefore = h.drains;
        const ws = h.connect(`ws://${HOST}:${raw.port}/`);
        await h.opened(ws);
        const chunk = payload(256 * 1024);
        let sent = 0;
        while (sent < 64 && ws.send(chunk)) sent++;
        sent++;
        assert.ok(sent < 64, 'send reported backpressure');
        assert.ok(ws.bufferedAmount > 0);
        const peer = raw.peers[0];
        peer.socket.resume();
        await waitFor(() => h.drains > drainsBefore, 'onDrain');
        await waitFor(() => peer.frames().length === sent, 'every message');
        assert.ok(peer.frames().every((f) => f.payload.equals(chunk)));
        ws.terminate();
        await h.closed(ws);
      } finally {
        raw.close();
      }
    });

    test('close timeout: a server that never answers our close frame is cut off (1006)', GUARD, async () => {
      const local = new Harness(backend, { closeTimeout: 100 });
      const raw = await rawServer((peer) => peer.socket.write(response101(peer.key)));
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        await local.opened(ws);
        ws.close(1000);
        assert.deepEqual(await local.closed(ws), { code: 1006, reason: '' });
        await waitFor(() => raw.peers[0].ended || raw.peers[0].closed, 'TCP closed');
        assert.equal(raw.peers[0].frames()[0]?.opcode, 8);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('after both close frames the client waits for the server to close TCP, then closes it itself', GUARD, async () => {
      const local = new Harness(backend, { closeTimeout: 100 });
      const raw = await rawServer((peer) => peer.socket.write(Buffer.concat([Buffer.from(response101(peer.key)), frame(8, Buffer.from([0x0f, 0xa0, 0x68]))])));
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        assert.deepEqual(await local.closed(ws), { code: 4000, reason: 'h' });
        const peer = raw.peers[0];
        await waitFor(() => peer.ended || peer.closed, 'the client closes TCP after its timeout');
        const f = peer.frames();
        assert.equal(f.length, 1);
        assert.deepEqual([f[0].opcode, f[0].payload.readUInt16BE(0), f[0].payload.subarray(2).toString()], [8, 4000, 'h']);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('heartbeat: pings a silent server, closes when it does not answer', GUARD, async () => {
      const local = new Harness(backend, { pingInterval: 80 });
      let answer = true;
      const raw = await rawServer((peer) => {
        peer.socket.write(response101(peer.key));
        peer.socket.on('data', () => {
          const pings = peer.frames().filter((f) => f.opcode === 9).length;
          if (answer && pings > 0 && pings <= 2) peer.socket.write(frame(10, ''));
          if (pings === 2) answer = false;
        });
      });
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        assert.equal((await local.closed(ws)).code, 1006);
        const pings = raw.peers[0].frames().filter((f) => f.opcode === 9);
        assert.ok(pings.length >= 3, `pinged ${pings.length} times`);
        assert.ok(pings.every((f) => f.masked));
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('the engine answers the server\'s empty pings when nothing watches pings (native)', { ...GUARD, skip: backend !== 'native' && 'native only' }, async () => {
      let opened = 0;
      const messages: string[] = [];
      const handler = createWebSocketClientHandler({ onOpen: () => void opened++, onMessage: (_ws, d) => void messages.push(Buffer.from(d).toString()) });
      const reactor = createReactor(handler, { backend, timerResolution: 20 });
      const raw = await rawServer((peer) => peer.socket.write(response101(peer.key)));
      try {
        const ws = handler.connect(reactor, `ws://${HOST}:${raw.port}/`);
        await waitFor(() => opened === 1, 'open');
        const peer = raw.peers[0]!;
        const pongs = (): ClientFrame[] => peer.frames().filter((f) => f.opcode === 10);
        const batches = reactor.stats.batches;
        for (let i = 1; i <= 5; i++) {
          peer.socket.write(frame(9, '')); // one read of exactly 0x89 0x00
          await waitFor(() => pongs().length === i, `pong ${i} (have ${pongs().length})`);
        }
        assert.equal(reactor.stats.batches, batches, 'no crossing to JS for the five pings');
        assert.ok(pongs().every((f) => f.masked && f.fin && f.payload.length === 0), JSON.stringify(pongs()));
        assert.ok(new Set(pongs().map((f) => f.key)).size > 1, 'fresh masking keys');
        // A ping with a payload, and a ping that comes with a message, go to JS as before.
        peer.socket.write(frame(9, 'hi'));
        await waitFor(() => pongs().length === 6, 'pong 6');
        assert.equal(pongs()[5]!.payload.toString(), 'hi');
        peer.socket.write(Buffer.concat([frame(9, ''), frame(1, 'msg')]));
        await waitFor(() => pongs().length === 7 && messages.length === 1, 'pong 7 and the message');
        assert.deepEqual(messages, ['msg']);
        // Once our close frame is out, pings are not answered, by the engine or by JS.
        ws.close(1000);
        await waitFor(() => peer.frames().some((f) => f.opcode === 8), 'our close frame');
        peer.socket.write(frame(9, ''));
        peer.socket.write(frame(8, Buffer.from([0x03, 0xe8])));
        await waitFor(() => handler.clients === 0, 'closed');
        assert.equal(pongs().length, 7, 'no pong after our close frame');
      } finally {
        raw.close();
        await reactor.close(2000);
      }
    });

    test('many connections on one reactor: 2,000 clients echo once each', GUARD, async () => {
      const N = 2000;
      const local = await wsServer(backend);
      const client = new Harness(backend, {
        onOpen: (ws) => ws.send(`hello ${ws.data as number}`),
        onMessage: (ws, data) => {
          assert.equal(data.toString(), `hello ${ws.data as number}`);
          ws.close(1000);
        },
      });
      try {
        for (let i = 0; i < N; i++) client.connect(local.url, { data: i });
        assert.equal(client.handler.clients, N);
        await waitFor(() => client.closes.length === N, `${N} closes (have ${client.closes.length})`, 60_000);
        assert.equal(client.errors.length, 0, client.errors[0]?.err.message);
        assert.equal(client.messages.length, N);
        assert.ok(client.closes.every((c) => c.code === 1000));
        assert.equal(client.handler.clients, 0);
        await waitFor(() => local.closes.length === N, 'server closes');
      } finally {
        await client.close();
        await local.srv.reactor.close(200);
      }
    });

    test('reactor.close() closes open WebSockets with 1001', GUARD, async () => {
      const local = await wsServer(backend);
      const client = new Harness(backend);
      try {
        const ws = client.connect(local.url);
        await client.opened(ws);
        await within(client.reactor.close(2000), 'reactor close');
        assert.equal((await client.closed(ws)).code, 1001);
        await waitFor(() => local.closes.length === 1, 'server close');
        assert.equal(local.closes[0].code, 1001);
      } finally {
        await local.srv.reactor.close(200);
      }
    });

    test('data and protocol live with the connection: readable from any handle until onClose', GUARD, async () => {
      const seen: unknown[][] = [];
      const client = new Harness(backend, {
        onOpen: (ws) => seen.push(['open', ws.data, ws.protocol]),
        onMessage: (ws) => {
          seen.push(['message', ws.data]);
          ws.data = { n: 2 };
          ws.close(1000);
        },
        onClose: (ws) => seen.push(['close', ws.data, ws.protocol]),
      });
      try {
        const ws = client.connect(server.url, { data: { n: 1 }, protocols: ['chat.v1'] });
        assert.deepEqual(ws.data, { n: 1 });
        await client.opened(ws);
        assert.equal(ws.protocol, 'chat.v1', 'the handle connect returned sees the open');
        ws.send('x');
        await client.closed(ws);
        assert.deepEqual(seen, [['open', { n: 1 }, 'chat.v1'], ['message', { n: 1 }], ['close', { n: 2 }, 'chat.v1']]);
        assert.equal(ws.data, undefined, 'gone after onClose');
        assert.equal(ws.readyState, 'closed');
        assert.equal(client.closes[0].ws.id, ws.id);
      } finally {
        await client.close();
      }
    });

    test('permessage-deflate: the offer, then masked compressed frames (RSV1, first frame only), threshold, control frames plain', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: { threshold: 100 } });
      const raw = await rawServer((peer) => peer.socket.write(response101(peer.key, `Sec-WebSocket-Extensions: ${NCT}\r\n`)));
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        await local.opened(ws);
        assert.equal(ws.extensions, NCT);
        assert.match(raw.peers[0].request, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits(\r\n|$)/);
        const text = textOf(3000);
        const big = Buffer.alloc(70_000, 5);
        const noise = randomBytes(5000);
        ws.send(text);
        ws.send('short, under the threshold');
        ws.send(big);
        ws.send(noise);
        ws.send(Buffer.from(text), false);
        ws.ping('p');
        ws.close(1000);
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === 7, 'seven frames');
        const f = peer.frames();
        assert.ok(f.every((x) => x.masked && x.fin), 'every frame masked and final');
        assert.equal(new Set(f.map((x) => x.key)).size, 7, 'seven distinct keys');
        assert.deepEqual(f.map((x) => [x.opcode, x.rsv1]), [[1, true], [1, false], [2, true], [2, false], [1, true], [9, false], [8, false]]);
        assert.equal(inflatedStream([f[0].payload]).toString(), text);
        assert.ok(f[0].payload.length < 1000, `compressed to ${f[0].payload.length} bytes`);
        assert.equal(f[1].payload.toString(), 'short, under the threshold');
        assert.ok(inflatedStream([f[2].payload]).equals(big));
        assert.ok(f[3].payload.equals(noise), 'incompressible: sent as it is');
        assert.equal(inflatedStream([f[4].payload]).toString(), text);
        ws.terminate();
        await local.closed(ws);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('permessage-deflate: compressed messages from the server, fragmented, control frames between, split at every byte', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: true });
      const large = Buffer.concat([payload(60_000, 4), Buffer.alloc(100_000, 3), payload(30_000, 6)]);
      const bin = deflated(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
      const raw = await rawServer(async (peer) => {
        const small = Buffer.concat([
          Buffer.from(response101(peer.key, `Sec-WebSocket-Extensions: ${NCT}\r\n`)),
          // RFC 7692 7.2.3.1 and 7.2.3.3: "Hello" compressed, and in a stored block.
          frame(1, Buffer.from('f248cdc9c90700', 'hex'), { rsv: RSV1 }),
          frame(1, Buffer.from('000500faff48656c6c6f00', 'hex'), { rsv: RSV1 }),
          frame(2, bin.subarray(0, 3), { fin: false, rsv: RSV1 }),
          frame(9, 'p1'),
          frame(0, bin.subarray(3, 5), { fin: false }),
          frame(0, bin.subarray(5)),
          frame(1, 'plain'),
          frame(1, Buffer.from([0x00]), { rsv: RSV1 }),
        ]);
        await dribble(peer.socket, small);
        const body = deflated(large);
        const cut = [0, 20_000, 20_001, body.length];
        const frames = cut.slice(1).map((end, i) => frame(i === 0 ? 2 : 0, body.subarray(cut[i], end), { fin: end === body.length, rsv: i === 0 ? RSV1 : 0 }));
        await dribble(peer.socket, Buffer.concat(frames), 997);
      });
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        await waitFor(() => local.messagesOf(ws).length === 6 || local.closeOf(ws) !== undefined, 'six messages');
        const got = local.messagesOf(ws);
        assert.deepEqual(got.slice(0, 5).map((m) => [m.data.toString('hex'), m.isBinary]), [
          [Buffer.from('Hello').toString('hex'), false],
          [Buffer.from('Hello').toString('hex'), false],
          ['0102030405060708090a0b0c', true],
          [Buffer.from('plain').toString('hex'), false],
          ['', false],
        ]);
        assert.equal(got[5].isBinary, true);
        assert.ok(got[5].data.equals(large), 'the large compressed message streamed in fragments');
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === 1, 'the pong');
        assert.deepEqual(peer.frames().map((x) => [x.opcode, x.rsv1, x.payload.toString()]), [[10, false, 'p1']]);
        assert.equal(local.errorOf(ws), undefined);
        ws.terminate();
        await local.closed(ws);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('permessage-deflate with context takeover: each direction is one continuous stream', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 } });
      const raw = await rawServer(async (peer) => {
        // RFC 7692 7.2.3.2: "Hello" twice with context takeover; the second refers to the first.
        const wire = Buffer.concat([
          Buffer.from(response101(peer.key, 'Sec-WebSocket-Extensions: permessage-deflate\r\n')),
          frame(1, Buffer.from('f248cdc9c90700', 'hex'), { rsv: RSV1 }),
          frame(1, Buffer.from('f200110000', 'hex'), { rsv: RSV1 }),
        ]);
        await dribble(peer.socket, wire);
      });
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        await local.opened(ws);
        assert.equal(ws.extensions, 'permessage-deflate');
        assert.match(raw.peers[0].request, /\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits(\r\n|$)/);
        await waitFor(() => local.messagesOf(ws).length === 2, 'two messages');
        assert.deepEqual(local.messagesOf(ws).map((m) => m.data.toString()), ['Hello', 'Hello']);
        const noise = randomBytes(3000).toString('base64');
        const sent = ['Hello', 'Hello', noise, noise, 'x'];
        for (const m of sent) ws.send(m);
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === sent.length, 'five frames');
        const f = peer.frames();
        assert.ok(f.every((x) => x.masked && x.rsv1 && x.opcode === 1));
        assert.equal(inflatedStream(f.map((x) => x.payload)).toString(), sent.join(''));
        assert.ok(f[1].payload.length < f[0].payload.length, 'the second Hello refers to the first');
        assert.ok(f[2].payload.length > 2000 && f[3].payload.length < 100, `a repeat of ${f[2].payload.length} bytes costs ${f[3].payload.length}`);
        ws.terminate();
        await local.closed(ws);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('permessage-deflate: a server that declines leaves the connection plain', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: { threshold: 0 } });
      const raw = await rawServer((peer) => peer.socket.write(Buffer.concat([Buffer.from(response101(peer.key)), frame(1, 'plain')])));
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        await local.opened(ws);
        assert.equal(ws.extensions, '');
        ws.send(textOf(3000));
        const peer = raw.peers[0];
        await waitFor(() => peer.frames().length === 1, 'one frame');
        assert.deepEqual(peer.frames().map((x) => [x.rsv1, x.payload.toString()]), [[false, textOf(3000)]]);
        await waitFor(() => local.messagesOf(ws).length === 1, 'the message');
        // RSV1 after a declined offer is a protocol error.
        peer.socket.write(frame(1, deflated('Hello'), { rsv: RSV1 }));
        assert.deepEqual(await local.closed(ws), { code: 1002, reason: '' });
        assert.equal(local.errorOf(ws)?.code, 'ERR_C1M_WS_RESERVED_BITS');
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('permessage-deflate: an invalid answer fails the handshake with ERR_C1M_WS_HANDSHAKE_EXTENSION', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: true });
      const answers: [string, RegExp][] = [
        ['Sec-WebSocket-Extensions: x-webkit-deflate-frame', /extension x-webkit-deflate-frame, which we did not offer/],
        [`Sec-WebSocket-Extensions: ${NCT}; mystery=1`, /unknown parameter mystery/],
        [`Sec-WebSocket-Extensions: ${NCT}; client_no_context_takeover`, /client_no_context_takeover is repeated/],
        [`Sec-WebSocket-Extensions: ${NCT}; client_max_window_bits=7`, /client_max_window_bits=7: window bits/],
        [`Sec-WebSocket-Extensions: ${NCT}; server_max_window_bits=16`, /server_max_window_bits=16: window bits/],
        [`Sec-WebSocket-Extensions: ${NCT}; client_max_window_bits`, /must give the window bits/],
        ['Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover', /server_no_context_takeover was offered and is missing/],
        [`Sec-WebSocket-Extensions: ${NCT}\r\nSec-WebSocket-Extensions: ${NCT}`, /permessage-deflate 2 times/],
        ['Sec-WebSocket-Extensions: permessage-deflate; a="', /malformed/],
      ];
      const raw = await rawServer((peer) => {
        const i = Number(peer.request.split(' ')[1].slice(1));
        peer.socket.end(response101(peer.key, `${answers[i][0]}\r\n`));
      });
      try {
        for (const [i, [answer, message]] of answers.entries()) {
          const ws = local.connect(`ws://${HOST}:${raw.port}/${i}`);
          assert.deepEqual(await local.closed(ws), { code: 1006, reason: '' }, answer);
          assert.ok(!local.hasOpened(ws), `${answer}: never opened`);
          const err = local.errorOf(ws) as WsClientError & { status?: number };
          assert.equal(err?.code, 'ERR_C1M_WS_HANDSHAKE_EXTENSION', `${answer}: ${err?.message}`);
          assert.match(err.message, message, answer);
          assert.equal(err.status, 101);
        }
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('permessage-deflate: a message inflating past maxPayload is a 1009, without inflating it all', GUARD, async () => {
      const local = new Harness(backend, { perMessageDeflate: true, maxPayload: 64 * 1024 });
      const bomb = deflated(Buffer.alloc(48 * 1024 * 1024));
      assert.ok(bomb.length < 64 * 1024, `the bomb itself fits in maxPayload (${bomb.length} bytes)`);
      const raw = await rawServer((peer) =>
        peer.socket.write(Buffer.concat([
          Buffer.from(response101(peer.key, `Sec-WebSocket-Extensions: ${NCT}\r\n`)),
          frame(2, deflated(Buffer.alloc(64 * 1024, 1)), { rsv: RSV1 }),
          frame(2, bomb, { rsv: RSV1 }),
        ])),
      );
      try {
        const ws = local.connect(`ws://${HOST}:${raw.port}/`);
        assert.deepEqual(await local.closed(ws), { code: 1009, reason: '' });
        assert.equal(local.errorOf(ws)?.code, 'ERR_C1M_WS_MESSAGE_TOO_BIG');
        assert.deepEqual(local.messagesOf(ws).map((m) => m.data.length), [64 * 1024], 'exactly maxPayload is delivered');
        const peer = raw.peers[0];
        await waitFor(() => peer.ended || peer.closed, 'the client closes TCP');
        assert.deepEqual(peer.frames().map((x) => [x.opcode, x.masked, x.payload.readUInt16BE(0)]), [[8, true, 1009]]);
      } finally {
        raw.close();
        await local.close();
      }
    });

    test('rejects bad URLs and options at once', GUARD, () => {
      assert.throws(() => h.connect('wss://127.0.0.1/', { tls: 'x' as never }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => h.connect('ftp://127.0.0.1/'), { code: 'ERR_C1M_WS_INVALID_URL' });
      assert.throws(() => h.connect('ws://127.0.0.1/#frag'), { code: 'ERR_C1M_WS_INVALID_URL' });
      assert.throws(() => h.connect('not a url'), { code: 'ERR_C1M_WS_INVALID_URL' });
      assert.throws(() => h.connect('ws://example.test/'), { code: 'ERR_C1M_WS_INVALID_URL' });
      assert.throws(() => h.connect('ws://127.0.0.1:1/', { protocols: ['a', 'a'] }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => h.connect('ws://127.0.0.1:1/', { protocols: ['a b'] }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => h.connect('ws://127.0.0.1:1/', { headers: { 'Sec-WebSocket-Key': 'x' } }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => h.connect('ws://127.0.0.1:1/', { headers: { 'X-A': 'a\r\nb' } }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => createWebSocketClientHandler({ closeTimeout: 0 }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => createWebSocketClientHandler({ maxPayload: -1 }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.equal(h.handler.clients, 0, 'nothing was connected');
    });
  });

  describe(`WebSocketClient (${backend})`, () => {
    let server: WsServerCtx;
    before(async () => {
      server = await wsServer(backend, { protocols: ['chat.v2', 'chat.v1'] });
    });
    after(() => server?.srv.reactor.close(200));

    const events = (ws: WebSocketClient): unknown[][] => {
      const log: unknown[][] = [];
      for (const name of ['open', 'message', 'ping', 'pong', 'error', 'close'] as const) {
        ws.on(name, (...args: unknown[]) => log.push([name, ...args.map((a) => (Buffer.isBuffer(a) ? a.toString() : a instanceof Error ? (a as { code?: string }).code : a))]));
      }
      return log;
    };

    test('echo, subprotocol, ping, close with code and reason: events as in ws', GUARD, async () => {
      const ws = new WebSocketClient(server.url, ['chat.v1', 'chat.v2'], { backend });
      const log = events(ws);
      assert.equal(ws.readyState, WebSocketClient.CONNECTING);
      assert.throws(() => ws.send('early'), { code: 'ERR_C1M_WS_NOT_OPEN' });
      await waitFor(() => log.length > 0, 'open');
      assert.deepEqual(log[0], ['open']);
      assert.equal(ws.readyState, WebSocketClient.OPEN);
      assert.equal(ws.protocol, 'chat.v1');
      const sent = deferred<Error | undefined>();
      assert.equal(ws.send('text', (err) => sent.resolve(err)), true);
      assert.equal(await sent.promise, undefined);
      ws.send(Buffer.from([1, 2, 3]));
      ws.send(new Uint8Array([4, 5]).buffer);
      ws.send('as binary', { binary: true });
      ws.ping('pp');
      await waitFor(() => log.length >= 6, 'echoes and pong');
      assert.deepEqual(log.slice(1, 6), [
        ['message', 'text', false],
        ['message', '\x01\x02\x03', true],
        ['message', '\x04\x05', true],
        ['message', 'as binary', true],
        ['pong', 'pp'],
      ]);
      ws.close(1000, 'done');
      assert.equal(ws.readyState, WebSocketClient.CLOSING);
      await waitFor(() => log.some((e) => e[0] === 'close'), 'close');
      assert.deepEqual(log.at(-1), ['close', 1000, 'done']);
      assert.equal(ws.readyState, WebSocketClient.CLOSED);
      const late = deferred<Error | undefined>();
      assert.equal(ws.send('late', (err) => late.resolve(err)), false);
      assert.equal(((await late.promise) as { code?: string }).code, 'ERR_C1M_WS_NOT_OPEN');
    });

    test('connection refused: error then close 1006', GUARD, async () => {
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, HOST, r));
      const port = (probe.address() as { port: number }).port;
      await new Promise((r) => probe.close(r));
      const ws = new WebSocketClient(`ws://${HOST}:${port}/`, undefined, { backend });
      const log = events(ws);
      await waitFor(() => log.some((e) => e[0] === 'close'), 'close');
      assert.deepEqual(log, [['error', 'ECONNREFUSED'], ['close', 1006, '']]);
    });

    test('close() while connecting aborts: error then close 1006', GUARD, async () => {
      const ws = new WebSocketClient(server.url, undefined, { backend });
      const log = events(ws);
      ws.close();
      assert.equal(ws.readyState, WebSocketClient.CLOSING);
      await waitFor(() => log.some((e) => e[0] === 'close'), 'close');
      assert.deepEqual(log, [['error', 'ERR_C1M_WS_HANDSHAKE_ABORTED'], ['close', 1006, '']]);
    });

    test('a refused upgrade carries the status and headers', GUARD, async () => {
      const local = await wsServer(backend, { onUpgrade: () => ({ status: 401, headers: { 'WWW-Authenticate': 'Basic' } }) });
      try {
        const ws = new WebSocketClient(local.url, undefined, { backend });
        const err = await new Promise<WsClientError & { status?: number; headers?: Record<string, string> }>((resolve) => ws.once('error', resolve));
        assert.equal(err.code, 'ERR_C1M_WS_HANDSHAKE_STATUS');
        assert.equal(err.status, 401);
        assert.equal(err.headers?.['www-authenticate'], 'Basic');
      } finally {
        await local.srv.reactor.close(200);
      }
    });

    test('resolves host names', GUARD, async (t) => {
      const { address } = await lookup('localhost');
      if (address !== HOST) {
        t.skip(`localhost resolves to ${address}`);
        return;
      }
      const ws = new WebSocketClient(`ws://localhost:${server.srv.port}/x`, 'chat.v2', { backend });
      await new Promise((r) => ws.once('open', r));
      assert.equal(ws.protocol, 'chat.v2');
      ws.terminate();
      const [code] = await new Promise<[number]>((r) => ws.once('close', (c) => r([c])));
      assert.equal(code, 1006);
    });

    test('throws for bad URLs and options', GUARD, () => {
      assert.throws(() => new WebSocketClient('gopher://127.0.0.1/'), { code: 'ERR_C1M_WS_INVALID_URL' });
      assert.throws(() => new WebSocketClient('ws://127.0.0.1:1/', ['a', 'a'], { backend }), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => new WebSocketClient('ws://localhost:1/', ['a', 'a'], { backend }), { code: 'ERR_C1M_INVALID_OPTION' });
    });
  });
}

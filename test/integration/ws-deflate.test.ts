/**
 * permessage-deflate (RFC 7692) on the WebSocket server, on every backend: interop with the
 * `ws` client (compression on, with and without context takeover, text and binary from 0 to
 * 1 MiB), raw-socket fixtures (RSV1 rules, fragmented compressed messages streamed across
 * reads, a zip bomb, corrupt data, invalid UTF-8 after inflating), the threshold, the
 * disabled server ignoring offers, and publish to a mix of compressed and plain clients; then
 * the c1m client against the c1m server with deflate both ways (text and binary up to
 * maxPayload, window bits, context takeover, the inflate limit at both ends, a server that
 * declines), with a counting relay in between to see the compression on the wire.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import WsClient from 'ws';
import {
  createReactor,
  createWebSocketClientHandler,
  createWebSocketHandler,
  type ClientWebSocket,
  type Reactor,
  type WebSocket,
  type WebSocketClientHandler,
  type WebSocketClientHandlerOptions,
  type WebSocketHandler,
  type WebSocketServerOptions,
} from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { frame, parseFrames, type Frame } from '../helpers/ws-frames.js';
import { GUARD, HOST, payload, rawClient, startServer, waitFor, type RawClient, type TestServer } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const RSV1 = 0x40;

/** Compressed payload of a message (RFC 7692 7.2.1), made by zlib directly. */
function deflated(data: Uint8Array | string): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: zc.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

function inflated(data: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([data, TAIL]), { finishFlush: zc.Z_SYNC_FLUSH });
}


function upgradeRequest(extensions?: string): string {
  return (
    'GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
    (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
    '\r\n'
  );
}

type RawWs = RawClient & { head: string; status: number; frames(): Frame[] };

/** A raw client that sent an upgrade request (offering `extensions`) and read the answer. */
async function rawWs(port: number, extensions?: string): Promise<RawWs> {
  const c = await rawClient(port);
  await c.send(upgradeRequest(extensions));
  await waitFor(() => c.bytes().includes('\r\n\r\n') || c.closed, 'response head');
  const bytes = c.bytes();
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'a response head');
  const head = bytes.subarray(0, end).toString('latin1');
  return Object.assign(c, {
    head,
    status: Number(head.split(' ')[1]),
    frames: (): Frame[] => parseFrames(c.bytes().subarray(end + 4)),
  });
}

async function waitFrames(c: RawWs, pred: (f: Frame[]) => boolean, what: string): Promise<Frame[]> {
  await waitFor(() => pred(c.frames()) || c.closed, what);
  const f = c.frames();
  assert.ok(pred(f), `${what}: got ${JSON.stringify(f.map((x) => [x.opcode, x.rsv1, x.payload.length]))}`);
  return f;
}

function closeCodeOf(frames: Frame[]): number {
  const close = frames.find((f) => f.opcode === 8);
  assert.ok(close, `a close frame in ${JSON.stringify(frames.map((f) => f.opcode))}`);
  assert.equal(close.rsv1, false, 'control frames are never compressed');
  return close.payload.readUInt16BE(0);
}

function extensionsHeader(head: string): string | undefined {
  return /\r\nSec-WebSocket-Extensions: ([^\r]*)/i.exec(head)?.[1];
}

interface Ctx {
  srv: TestServer;
  handler: WebSocketHandler;
  url: string;
  sockets: WebSocket[];
  errors: string[];
}

async function server(backend: (typeof backends)[number], opts: WebSocketServerOptions = {}): Promise<Ctx> {
  const sockets: WebSocket[] = [];
  const errors: string[] = [];
  const handler = createWebSocketHandler({
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
    onOpen(ws) {
      sockets.push(ws);
    },
    onError(_ws, err) {
      errors.push(err.code);
    },
    ...opts,
  });
  const srv = await startServer(backend, handler, { timerResolution: 20 });
  return { srv, handler, url: `ws://${HOST}:${srv.port}/chat`, sockets, errors };
}

interface Client {
  ws: WsClient;
  /** The server's Sec-WebSocket-Extensions answer. */
  extensions: string | undefined;
}

function wsClient(url: string, options?: WsClient.ClientOptions): Promise<Client> {
  const ws = new WsClient(url, options);
  let extensions: string | undefined;
  ws.once('upgrade', (res) => {
    extensions = res.headers['sec-websocket-extensions'];
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, extensions }));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WsClient): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
}

function closed(ws: WsClient): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** Text that compresses well, with multi-byte characters. */
function text(size: number): string {
  return '{"user":"é€","seq":12345,"ok":true} 😀 '.repeat(Math.ceil(size / 40) + 1).slice(0, size);
}

/** Echo every size both ways and check the bytes on the client socket stayed compressed. */
async function exchange(c: Client, sizes: readonly number[]): Promise<void> {
  const socket = (c.ws as unknown as { _socket: { bytesRead: number; bytesWritten: number } })._socket;
  let plainBytes = 0;
  const read0 = socket.bytesRead;
  const written0 = socket.bytesWritten;
  for (const size of sizes) {
    // Binary: half compressible, half pseudo-random (random bytes are sent uncompressed).
    const bin = Buffer.concat([Buffer.alloc(size >> 1, 7), payload(size - (size >> 1), size + 1)]);
    let m = nextMessage(c.ws);
    c.ws.send(bin);
    let got = await m;
    assert.equal(got.isBinary, true);
    assert.ok(got.data.equals(bin), `binary ${size}`);
    const t = text(size);
    m = nextMessage(c.ws);
    c.ws.send(t);
    got = await m;
    assert.equal(got.isBinary, false);
    assert.equal(got.data.toString(), t, `text ${size}`);
    plainBytes += bin.length + Buffer.byteLength(t);
  }
  // Compression happened both ways: far fewer bytes on the wire than the messages carried.
  assert.ok(socket.bytesRead - read0 < plainBytes * 0.75, `read ${socket.bytesRead - read0} of ${plainBytes}`);
  assert.ok(socket.bytesWritten - written0 < plainBytes * 0.75, `wrote ${socket.bytesWritten - written0} of ${plainBytes}`);
}

const SIZES = [0, 1, 125, 126, 1023, 1024, 1025, 16_000, 16_385, 65_536, 200_000, 1024 * 1024];

for (const backend of backends) {
  describe(`permessage-deflate (${backend})`, () => {
    let ctx: Ctx;
    let takeover: Ctx;
    before(async () => {
      ctx = await server(backend, { perMessageDeflate: { threshold: 64 }, maxPayload: 2 * 1024 * 1024 });
      takeover = await server(backend, {
        perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 },
        maxPayload: 2 * 1024 * 1024,
      });
    });
    after(async () => {
      await ctx?.srv.reactor.close(1000);
      await takeover?.srv.reactor.close(1000);
    });

    test('ws client, server defaults: no context takeover either way, 0 B to 1 MiB', GUARD, async () => {
      const c = await wsClient(ctx.url, { perMessageDeflate: { threshold: 0 } });
      assert.equal(c.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
      assert.equal(ctx.sockets.at(-1)!.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
      await exchange(c, SIZES);
      const done = closed(c.ws);
      c.ws.close(1000);
      assert.equal(await done, 1000);
      assert.deepEqual(ctx.errors, []);
    });

    test('ws client offering client_no_context_takeover and a small client window', GUARD, async () => {
      const c = await wsClient(ctx.url, { perMessageDeflate: { threshold: 0, clientNoContextTakeover: true, clientMaxWindowBits: 10, serverMaxWindowBits: 11 } });
      assert.equal(c.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11');
      await exchange(c, SIZES);
      c.ws.terminate();
    });

    test('context takeover both ways when the server allows it', GUARD, async () => {
      const c = await wsClient(takeover.url, { perMessageDeflate: { threshold: 0 } });
      assert.equal(c.extensions, 'permessage-deflate');
      // Repeated messages refer back into earlier ones: wrong history on either side garbles them.
      await exchange(c, [...SIZES, ...SIZES.slice(0, 8), 3000, 3000, 40_000, 40_000]);
      c.ws.terminate();
    });

    test('context takeover allowed by the server, refused by the ws client', GUARD, async () => {
      const c = await wsClient(takeover.url, { perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true } });
      assert.equal(c.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
      await exchange(c, [0, 100, 5000, 5000, 100_000]);
      c.ws.terminate();
    });

    test('a ws client without permessage-deflate talks plainly to the same server', GUARD, async () => {
      const c = await wsClient(ctx.url, { perMessageDeflate: false });
      assert.equal(c.extensions, undefined);
      assert.equal(ctx.sockets.at(-1)!.extensions, '');
      const m = nextMessage(c.ws);
      c.ws.send(text(5000));
      assert.equal((await m).data.toString(), text(5000));
      c.ws.terminate();
    });

    test('messages under the threshold go uncompressed; control frames never compressed', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate');
      assert.equal(c.status, 101);
      await c.send(Buffer.concat([frame(1, 'short'), frame(1, deflated(text(3000)), { rsv: RSV1 }), frame(9, 'ping')]));
      const f = await waitFrames(c, (x) => x.length >= 3, 'two echoes and a pong');
      assert.deepEqual(f.map((x) => [x.opcode, x.rsv1]), [[1, false], [1, true], [10, false]]);
      assert.equal(f[0].payload.toString(), 'short');
      assert.equal(inflated(f[1].payload).toString(), text(3000));
      assert.equal(f[2].payload.toString(), 'ping');
      c.destroy();
    });

    test('a fragmented compressed message streamed across reads (RSV1 on the first frame only)', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate; client_max_window_bits');
      const message = Buffer.concat([payload(60_000, 5), Buffer.alloc(100_000, 3), payload(30_000, 6)]);
      const body = deflated(message);
      assert.ok(body.length > 80_000);
      const cuts = [0, 20_000, 20_001, 70_000, body.length];
      const wire = Buffer.concat(cuts.slice(1).map((end, i) => frame(i === 0 ? 2 : 0, body.subarray(cuts[i], end), { fin: i === cuts.length - 2, rsv: i === 0 ? RSV1 : 0 })));
      for (let off = 0; off < wire.length; off += 4093) await c.send(wire.subarray(off, off + 4093));
      // Then small fragments, every byte its own read.
      const small = deflated(text(200));
      const wire2 = Buffer.concat([frame(1, small.subarray(0, 5), { fin: false, rsv: RSV1 }), frame(9, 'p'), frame(0, small.subarray(5, 9), { fin: false }), frame(0, small.subarray(9))]);
      for (let i = 0; i < wire2.length; i++) await c.send(wire2.subarray(i, i + 1));
      const f = await waitFrames(c, (x) => x.length >= 3, 'echo, pong, echo');
      assert.deepEqual(f.map((x) => [x.opcode, x.rsv1]), [[2, true], [10, false], [1, true]]);
      assert.ok(inflated(f[0].payload).equals(message));
      assert.equal(inflated(f[2].payload).toString(), text(200));
      c.destroy();
    });

    test('RSV1 on a continuation frame: 1002', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate');
      const body = deflated('abcdefabcdef');
      await c.send(Buffer.concat([frame(1, body.subarray(0, 4), { fin: false, rsv: RSV1 }), frame(0, body.subarray(4), { rsv: RSV1 })]));
      await c.waitClosed();
      assert.equal(closeCodeOf(c.frames()), 1002);
      await waitFor(() => ctx.errors.includes('ERR_C1M_WS_RESERVED_BITS'), 'onError');
    });

    test('RSV1 on a control frame: 1002', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate');
      await c.send(frame(9, 'x', { rsv: RSV1 }));
      await c.waitClosed();
      assert.equal(closeCodeOf(c.frames()), 1002);
    });

    test('RSV1 when the client did not offer permessage-deflate: 1002', GUARD, async () => {
      const c = await rawWs(ctx.srv.port);
      assert.equal(extensionsHeader(c.head), undefined);
      await c.send(frame(1, deflated('Hello'), { rsv: RSV1 }));
      await c.waitClosed();
      assert.equal(closeCodeOf(c.frames()), 1002);
    });

    test('a zip bomb: 1009, without inflating it all', GUARD, async () => {
      const local = await server(backend, { perMessageDeflate: true, maxPayload: 64 * 1024 });
      try {
        const c = await rawWs(local.srv.port, 'permessage-deflate');
        const bomb = deflated(Buffer.alloc(48 * 1024 * 1024));
        assert.ok(bomb.length < 64 * 1024, `the bomb itself fits in maxPayload (${bomb.length} bytes)`);
        await c.send(frame(2, bomb, { rsv: RSV1 }));
        await c.waitClosed();
        assert.equal(closeCodeOf(c.frames()), 1009);
        assert.deepEqual(local.errors, ['ERR_C1M_WS_MESSAGE_TOO_BIG']);
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('an inflated message of exactly maxPayload is delivered', GUARD, async () => {
      const got: number[] = [];
      const local = await server(backend, { perMessageDeflate: true, maxPayload: 10_000, onMessage: (_ws, data) => void got.push(data.length) });
      try {
        const c = await rawWs(local.srv.port, 'permessage-deflate');
        await c.send(frame(2, deflated(Buffer.alloc(10_000, 1)), { rsv: RSV1 }));
        await waitFor(() => got.length === 1, 'the message');
        await c.send(frame(2, deflated(Buffer.alloc(10_001, 1)), { rsv: RSV1 }));
        await c.waitClosed();
        assert.deepEqual(got, [10_000]);
        assert.equal(closeCodeOf(c.frames()), 1009);
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('corrupt compressed data: 1007', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate');
      await c.send(frame(1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), { rsv: RSV1 }));
      await c.waitClosed();
      assert.equal(closeCodeOf(c.frames()), 1007);
      await waitFor(() => ctx.errors.includes('ERR_C1M_WS_INVALID_COMPRESSED_DATA'), 'onError');
    });

    test('invalid UTF-8 in an inflated text message: 1007', GUARD, async () => {
      const c = await rawWs(ctx.srv.port, 'permessage-deflate');
      await c.send(frame(1, deflated(Buffer.from([0x61, 0xc3, 0x28, 0x62])), { rsv: RSV1 }));
      await c.waitClosed();
      assert.equal(closeCodeOf(c.frames()), 1007);
      await waitFor(() => ctx.errors.includes('ERR_C1M_WS_INVALID_UTF8'), 'onError');
    });

    test('negotiation over the wire: parameters, a declined first offer, malformed header', GUARD, async () => {
      let c = await rawWs(ctx.srv.port, 'permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10; client_max_window_bits');
      assert.equal(c.status, 101);
      assert.equal(extensionsHeader(c.head), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
      // The server honours the 10-bit window it agreed to.
      await c.send(frame(1, deflated(text(50_000)), { rsv: RSV1 }));
      const f = await waitFrames(c, (x) => x.length >= 1, 'echo');
      assert.equal(inflateRawSync(Buffer.concat([f[0].payload, TAIL]), { windowBits: 10, finishFlush: zc.Z_SYNC_FLUSH }).toString(), text(50_000));
      c.destroy();

      c = await rawWs(ctx.srv.port, 'permessage-deflate; foo=bar');
      assert.equal(c.status, 101);
      assert.equal(extensionsHeader(c.head), undefined);
      c.destroy();

      c = await rawWs(ctx.srv.port, 'permessage-deflate; a="unterminated');
      assert.equal(c.status, 400);
      await c.waitClosed();
    });

    test('a server without perMessageDeflate ignores offers, and RSV1 is a 1002', GUARD, async () => {
      const local = await server(backend);
      try {
        const c = await rawWs(local.srv.port, 'permessage-deflate; client_max_window_bits');
        assert.equal(c.status, 101);
        assert.equal(extensionsHeader(c.head), undefined);
        await c.send(frame(1, deflated('Hello'), { rsv: RSV1 }));
        await c.waitClosed();
        assert.equal(closeCodeOf(c.frames()), 1002);
        // Malformed offers are not even read.
        const d = await rawWs(local.srv.port, 'permessage-deflate; a="unterminated');
        assert.equal(d.status, 101);
        d.destroy();
        const w = await wsClient(local.url);
        assert.equal(w.extensions, undefined);
        w.ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('handler.publish compresses once for deflate clients, plain for the others', GUARD, async () => {
      const local = await server(backend, { perMessageDeflate: { threshold: 100 } });
      try {
        const a = await rawWs(local.srv.port, 'permessage-deflate');
        const b = await rawWs(local.srv.port, 'permessage-deflate; client_max_window_bits');
        const plain = await rawWs(local.srv.port);
        const w = await wsClient(local.url, { perMessageDeflate: { threshold: 0 } });
        await waitFor(() => local.sockets.length === 4, 'four sockets');
        const ids = local.sockets.map((s) => s.id);
        const big = text(10_000);
        const m = nextMessage(w.ws);
        assert.equal(local.handler.publish(local.srv.reactor, [...ids, 987654], big), 4);
        assert.equal((await m).data.toString(), big);
        assert.equal(local.handler.publish(local.srv.reactor, ids, Buffer.from('tiny')), 4);
        for (const c of [a, b, plain]) {
          const f = await waitFrames(c, (x) => x.length >= 2, 'two published messages');
          const compressed = c !== plain;
          assert.deepEqual(f.map((x) => [x.opcode, x.rsv1]), [[1, compressed], [2, false]]);
          assert.equal((compressed ? inflated(f[0].payload) : f[0].payload).toString(), big);
          assert.equal(f[1].payload.toString(), 'tiny');
        }
        // A closing WebSocket is skipped.
        local.sockets[0].close();
        assert.equal(local.handler.publish(local.srv.reactor, ids, 'x'), 3);
        for (const c of [a, b, plain]) c.destroy();
        w.ws.terminate();
      } finally {
        await local.srv.reactor.close(1000);
      }
    });

    test('bad perMessageDeflate options are refused at creation', () => {
      assert.throws(() => createWebSocketHandler({ perMessageDeflate: 'yes' as unknown as boolean }), { code: 'ERR_C1M_INVALID_OPTION', message: /perMessageDeflate/ });
      assert.throws(() => createWebSocketHandler({ perMessageDeflate: { serverMaxWindowBits: 8 } }), { code: 'ERR_C1M_INVALID_OPTION', message: /serverMaxWindowBits/ });
    });
  });
}

/** A TCP relay to `port` that counts the bytes each way: compression shows on the wire. */
interface Relay {
  port: number;
  /** Bytes from clients to the server, and back. */
  up: number;
  down: number;
  close(): void;
}

async function relay(port: number): Promise<Relay> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const r: Relay = { port: 0, up: 0, down: 0, close: () => {} };
  const srv = createServer((inbound) => {
    const outbound = netConnect({ port, host: HOST });
    track(inbound);
    track(outbound);
    inbound.on('data', (d: Buffer) => {
      r.up += d.length;
      outbound.write(d);
    });
    outbound.on('data', (d: Buffer) => {
      r.down += d.length;
      inbound.write(d);
    });
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, HOST, resolve));
  r.port = (srv.address() as { port: number }).port;
  r.close = () => {
    for (const s of sockets) s.destroy();
    srv.close();
  };
  return r;
}

/** One c1m client WebSocket on its own reactor, its events recorded. */
interface C1mPeer {
  ws: ClientWebSocket;
  reactor: Reactor;
  handler: WebSocketClientHandler;
  opened: boolean;
  messages: { data: Buffer; isBinary: boolean }[];
  errors: { code: string; message: string }[];
  close: { code: number; reason: string } | undefined;
}

async function c1mClient(backend: (typeof backends)[number], url: string, opts: WebSocketClientHandlerOptions): Promise<C1mPeer> {
  const peer = { opened: false, messages: [], errors: [], close: undefined } as unknown as C1mPeer;
  peer.handler = createWebSocketClientHandler({
    ...opts,
    onOpen: () => void (peer.opened = true),
    onMessage: (_ws, data, isBinary) => void peer.messages.push({ data: Buffer.from(data), isBinary }),
    onError: (_ws, err) => void peer.errors.push({ code: err.code ?? '', message: err.message }),
    onClose: (_ws, code, reason) => void (peer.close = { code, reason }),
  });
  peer.reactor = createReactor(peer.handler, { backend, timerResolution: 20 });
  peer.ws = peer.handler.connect(peer.reactor, url);
  await waitFor(() => peer.opened || peer.close !== undefined, 'client open');
  assert.ok(peer.opened, `not opened: ${JSON.stringify(peer.errors)}`);
  return peer;
}

/** Send every message, wait for the echoes, compare them in order. */
async function echoAll(peer: C1mPeer, sent: (string | Buffer)[]): Promise<void> {
  const before = peer.messages.length;
  for (const m of sent) peer.ws.send(m);
  await waitFor(() => peer.messages.length >= before + sent.length || peer.close !== undefined, `${sent.length} echoes`);
  assert.equal(peer.close, undefined, `closed early: ${JSON.stringify(peer.errors)}`);
  const got = peer.messages.slice(before);
  for (let i = 0; i < sent.length; i++) {
    const m = sent[i];
    assert.equal(got[i].isBinary, typeof m !== 'string', `message ${i} kind`);
    assert.ok(got[i].data.equals(typeof m === 'string' ? Buffer.from(m) : m), `message ${i} (${Buffer.byteLength(m)} bytes)`);
  }
}

/** A text of exactly `size` UTF-8 bytes, with 2-, 3- and 4-byte characters. */
function textOf(size: number): string {
  return 'é€😀ab'.repeat(Math.floor(size / 11)) + 'a'.repeat(size % 11);
}

const plainBytes = (sent: (string | Buffer)[]): number => sent.reduce((n, m) => n + Buffer.byteLength(m), 0);

for (const backend of backends) {
  describe(`permessage-deflate, c1m client <-> c1m server (${backend})`, () => {
    const MAX = 2 * 1024 * 1024;
    let ctx: Ctx;
    let takeover: Ctx;
    let plain: Ctx;
    before(async () => {
      ctx = await server(backend, { perMessageDeflate: { threshold: 64 }, maxPayload: MAX });
      takeover = await server(backend, { perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 }, maxPayload: MAX });
      plain = await server(backend, { maxPayload: MAX });
    });
    after(async () => {
      await ctx?.srv.reactor.close(1000);
      await takeover?.srv.reactor.close(1000);
      await plain?.srv.reactor.close(1000);
    });

    /** Text and binary of every size, up to exactly maxPayload; binary half compressible. */
    const messagesUpTo = (max: number): (string | Buffer)[] =>
      [...SIZES, max - 1, max].flatMap((size) => [Buffer.concat([Buffer.alloc(size >> 1, 7), payload(size - (size >> 1), size + 1)]), textOf(size)]);

    test('defaults, no context takeover: text and binary from 0 B to exactly maxPayload, compressed both ways', GUARD, async () => {
      const r = await relay(ctx.srv.port);
      const peer = await c1mClient(backend, `ws://${HOST}:${r.port}/chat`, { perMessageDeflate: { threshold: 64 }, maxPayload: MAX });
      try {
        const NCT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
        assert.equal(peer.ws.extensions, NCT);
        assert.equal(ctx.sockets.at(-1)!.extensions, NCT);
        const up0 = r.up;
        const down0 = r.down;
        const sent = messagesUpTo(MAX);
        await echoAll(peer, sent);
        assert.ok(r.up - up0 < plainBytes(sent) * 0.75, `client sent ${r.up - up0} bytes for ${plainBytes(sent)}`);
        assert.ok(r.down - down0 < plainBytes(sent) * 0.75, `server sent ${r.down - down0} bytes for ${plainBytes(sent)}`);
        peer.ws.close(1000, 'done');
        await waitFor(() => peer.close !== undefined, 'close');
        assert.deepEqual(peer.close, { code: 1000, reason: 'done' });
        assert.deepEqual(peer.errors, []);
        assert.equal(peer.ws.extensions, '', 'nothing after the close');
      } finally {
        r.close();
        await peer.reactor.close(200);
      }
    });

    test('smaller windows both ways: the server is asked for 10 bits, the client uses 9', GUARD, async () => {
      const peer = await c1mClient(backend, ctx.url, { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }, maxPayload: MAX });
      try {
        assert.equal(peer.ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9');
        await echoAll(peer, [text(50_000), Buffer.alloc(70_000, 9), text(300), Buffer.alloc(0)]);
      } finally {
        await peer.reactor.close(200);
      }
    });

    test('context takeover both ways: repeated messages refer back into earlier ones', GUARD, async () => {
      const r = await relay(takeover.srv.port);
      const peer = await c1mClient(backend, `ws://${HOST}:${r.port}/chat`, {
        perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 },
        maxPayload: MAX,
      });
      try {
        assert.equal(peer.ws.extensions, 'permessage-deflate');
        assert.equal(takeover.sockets.at(-1)!.extensions, 'permessage-deflate');
        await echoAll(peer, messagesUpTo(MAX));
        // A message equal to the previous one costs a few bytes each way once the window holds it.
        const m = payload(3000, 42);
        await echoAll(peer, [m]);
        const up0 = r.up;
        const down0 = r.down;
        await echoAll(peer, [m]);
        assert.ok(r.up - up0 < 100, `repeat sent as ${r.up - up0} bytes`);
        assert.ok(r.down - down0 < 100, `repeat echoed as ${r.down - down0} bytes`);
        assert.deepEqual(peer.errors, []);
      } finally {
        r.close();
        await peer.reactor.close(200);
      }
    });

    test('the client takes context over, the server refuses it: each end as agreed', GUARD, async () => {
      const peer = await c1mClient(backend, ctx.url, { perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 } });
      try {
        // The server's defaults add both no_context_takeover parameters.
        assert.equal(peer.ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
        await echoAll(peer, [text(5000), text(5000), payload(20_000, 3), payload(20_000, 3)]);
      } finally {
        await peer.reactor.close(200);
      }
    });

    test('an inflated message over the client\'s maxPayload: 1009 from the client', GUARD, async () => {
      const LIMIT = 64 * 1024;
      const peer = await c1mClient(backend, ctx.url, { perMessageDeflate: true, maxPayload: LIMIT });
      try {
        await echoAll(peer, [Buffer.alloc(LIMIT)]);
        // Sent compressed to a few hundred bytes; the server's echo inflates past our limit.
        peer.ws.send(Buffer.alloc(LIMIT + 1));
        await waitFor(() => peer.close !== undefined, 'client close');
        assert.deepEqual(peer.close, { code: 1009, reason: '' });
        assert.deepEqual(peer.errors.map((e) => e.code), ['ERR_C1M_WS_MESSAGE_TOO_BIG']);
        assert.equal(peer.messages.length, 1);
      } finally {
        await peer.reactor.close(200);
      }
    });

    test('a message inflating past the server\'s maxPayload: 1009 from the server', GUARD, async () => {
      const LIMIT = 64 * 1024;
      const local = await server(backend, { perMessageDeflate: true, maxPayload: LIMIT });
      const peer = await c1mClient(backend, local.url, { perMessageDeflate: true });
      try {
        await echoAll(peer, [textOf(LIMIT)]);
        peer.ws.send(Buffer.alloc(8 * LIMIT));
        await waitFor(() => peer.close !== undefined, 'client close');
        assert.deepEqual(peer.close, { code: 1009, reason: '' });
        assert.deepEqual(peer.errors, [], 'the server closed cleanly: no error at the client');
        assert.deepEqual(local.errors, ['ERR_C1M_WS_MESSAGE_TOO_BIG']);
      } finally {
        await peer.reactor.close(200);
        await local.srv.reactor.close(1000);
      }
    });

    test('a server without permessage-deflate declines: the connection stays uncompressed', GUARD, async () => {
      const r = await relay(plain.srv.port);
      const peer = await c1mClient(backend, `ws://${HOST}:${r.port}/chat`, { perMessageDeflate: { threshold: 0 } });
      try {
        assert.equal(peer.ws.extensions, '');
        const up0 = r.up;
        const sent = [text(10_000), Buffer.alloc(10_000)];
        await echoAll(peer, sent);
        assert.ok(r.up - up0 >= plainBytes(sent), `uncompressed: ${r.up - up0} bytes for ${plainBytes(sent)}`);
      } finally {
        r.close();
        await peer.reactor.close(200);
      }
    });

    test('bad perMessageDeflate options are refused at the client handler\'s creation', () => {
      assert.throws(() => createWebSocketClientHandler({ perMessageDeflate: 1 as unknown as boolean }), { code: 'ERR_C1M_INVALID_OPTION', message: /perMessageDeflate/ });
      assert.throws(() => createWebSocketClientHandler({ perMessageDeflate: { clientMaxWindowBits: 16 } }), { code: 'ERR_C1M_INVALID_OPTION', message: /clientMaxWindowBits/ });
      assert.throws(() => createWebSocketClientHandler({ perMessageDeflate: { threshold: -1 } }), { code: 'ERR_C1M_INVALID_OPTION', message: /threshold/ });
    });
  });
}

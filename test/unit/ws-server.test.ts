/**
 * The WebSocket server's upgrade paths without sockets: connections are fakes that follow the
 * engine's `onData` contract (unconsumed bytes are presented again, followed by the next ones),
 * so every split of the bytes can be tried. Over a socket: test/integration/ws-server.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Action, type Connection, type Handler } from '../../src/core/index.js';
import { createHttpHandler } from '../../src/protocols/http1/index.js';
import { createWebSocketHandler, type WebSocketHandler } from '../../src/protocols/ws/server.js';
import { frame, parseFrames } from '../helpers/ws-frames.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const REQUEST = `GET /socket HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A connection as the engine presents it to a handler (one per test run). */
class FakeConnection {
  readonly id = 7;
  tag = 0;
  context: unknown = undefined;
  open = true;
  paused = false;
  readonly out: Buffer[] = [];
  write(b: Uint8Array | string): boolean {
    this.out.push(Buffer.from(b as Uint8Array));
    return true;
  }
  writev(list: (Uint8Array | string)[]): boolean {
    for (const b of list) this.write(b);
    return true;
  }
  writeWithHeader(header: number, bytes: number, data: Uint8Array): boolean {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(header >>> 0);
    this.out.push(h.subarray(4 - bytes), Buffer.from(data));
    return true;
  }
  setTimeout(): void {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  close(): boolean {
    this.open = false;
    return true;
  }
  shutdown(): boolean {
    return true;
  }
  destroy(): void {
    this.open = false;
  }
  get bufferedAmount(): number {
    return 0;
  }
}

/** Feed `chunks` as successive reads; returns what was written and the bytes left unconsumed. */
function drive(handler: Handler, conn: FakeConnection, chunks: Buffer[]): { written: Buffer; held: number } {
  const c = conn as unknown as Connection;
  handler.onOpen?.(c);
  let held = Buffer.alloc(0);
  for (const chunk of chunks) {
    if (!conn.open) break;
    // A fresh copy each time: the engine's receive area, which the handler may unmask in place.
    const data = Buffer.concat([held, chunk]);
    const r = handler.onData!(c, data);
    const used = r === undefined || r === Action.Close || r === Action.Shutdown ? data.length : (r as number);
    held = Buffer.from(data.subarray(used));
  }
  return { written: Buffer.concat(conn.out), held: held.length };
}

function echoServer(): WebSocketHandler {
  return createWebSocketHandler({
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
  });
}

/** The frames written after the 101 head, as [opcode, payload] pairs. */
function echoes(written: Buffer): [number, string][] {
  const text = written.toString('latin1');
  assert.ok(text.startsWith('HTTP/1.1 101 Switching Protocols\r\n'), text.slice(0, 40));
  assert.ok(text.includes(`Sec-WebSocket-Accept: ${ACCEPT}\r\n`));
  const end = written.indexOf('\r\n\r\n') + 4;
  return parseFrames(written.subarray(end)).map((f) => [f.opcode, f.payload.toString('latin1')]);
}

describe('upgrade hand-over from the HTTP server', () => {
  const third = frame(2, Buffer.alloc(300, 0x33));
  const bytes = Buffer.concat([Buffer.from(REQUEST, 'latin1'), frame(1, 'first'), frame(2, Buffer.from('second frame')), third.subarray(0, 7)]);
  const rest = third.subarray(7);
  const expected: [number, string][] = [[1, 'first'], [2, 'second frame'], [2, '3'.repeat(300)]];

  test('frames in the same read as the request head, split at every byte: the same answer as on its own port', () => {
    for (let at = 1; at < bytes.length; at++) {
      const chunks = [bytes.subarray(0, at), bytes.subarray(at), rest];
      const ws = echoServer();
      const http = createHttpHandler({ routes: { 'GET /': (_req, res) => res.end('page') }, onUpgrade: ws.upgradeHook() });
      const shared = drive(http, new FakeConnection(), chunks);
      const own = drive(echoServer(), new FakeConnection(), chunks);
      assert.deepEqual(echoes(shared.written), expected, `split at ${at}`);
      assert.deepEqual(shared.written, own.written, `split at ${at}`);
      assert.equal(shared.held, 0);
      assert.equal(ws.clients, 1);
    }
  });

  test('the session that read an upgrade serves the next connections: HTTP requests, then another upgrade', () => {
    const ws = echoServer();
    const http = createHttpHandler({ routes: { 'GET /': (_req, res) => res.end('page') }, onUpgrade: ws.upgradeHook() });
    const two = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(echoes(drive(http, new FakeConnection(), [bytes, rest]).written), expected, `upgrade ${i}`);
      const page = new FakeConnection();
      const r = drive(http, page, [two.subarray(0, 30), two.subarray(30)]);
      assert.equal(r.written.toString('latin1').match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 2, `requests ${i}: ${JSON.stringify(r.written.toString('latin1'))}`);
      assert.equal(page.context, undefined);
      assert.equal(page.open, true);
    }
    assert.equal(ws.clients, 3);
  });

  test('a partial frame behind the head stays in the engine, not in JS', () => {
    const ws = echoServer();
    const http = createHttpHandler({ onUpgrade: ws.upgradeHook() });
    const conn = new FakeConnection();
    const r = drive(http, conn, [bytes]);
    // Consumed: the head and two whole frames; the 7 bytes of the third are left to the engine.
    assert.equal(r.held, 7);
    assert.deepEqual(echoes(r.written), expected.slice(0, 2));
  });

  test('an upgrade queued behind a pending response: its bytes wait, a partial frame is carried', async () => {
    let finish: (() => void) | undefined;
    const ws = echoServer();
    const http = createHttpHandler({
      routes: { 'GET /slow': (_req, res) => void (finish = () => res.end('slow')) },
      onUpgrade: ws.upgradeHook(),
    });
    const conn = new FakeConnection();
    const slow = 'GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n';
    const r = drive(http, conn, [Buffer.concat([Buffer.from(slow, 'latin1'), bytes])]);
    assert.equal(r.held, 0);
    assert.equal(conn.paused, true);
    assert.equal(ws.clients, 0);
    finish!();
    assert.equal(ws.clients, 1);
    assert.equal(conn.paused, false);
    const after = drive(http, conn, [rest]);
    const text = after.written.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.deepEqual(echoes(after.written.subarray(after.written.indexOf('HTTP/1.1 101'))), expected);
  });

  test('a refused upgrade gets the WebSocket handler\'s answer, then the connection closes', () => {
    const ws = echoServer();
    const http = createHttpHandler({ onUpgrade: ws.upgradeHook() });
    const conn = new FakeConnection();
    const r = drive(http, conn, [Buffer.from(REQUEST.replace('Version: 13', 'Version: 8'), 'latin1')]);
    assert.match(r.written.toString('latin1'), /^HTTP\/1\.1 426 Upgrade Required\r\n[^]*Sec-WebSocket-Version: 13\r\n/);
    assert.equal(conn.open, false);
    assert.equal(ws.clients, 0);
  });

  test('called directly, the hook reads `head` and keeps a partial frame until the next bytes', () => {
    const ws = echoServer();
    const conn = new FakeConnection();
    const c = conn as unknown as Connection;
    const headers: [string, string][] = [['Host', 'example.com'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', KEY], ['Sec-WebSocket-Version', '13']];
    const after = bytes.subarray(REQUEST.length);
    const next = ws.upgradeHook()({ method: 'GET', target: '/socket', headers }, c, Buffer.from(after));
    assert.equal(next, ws);
    ws.onData!(c, Buffer.from(rest));
    assert.deepEqual(echoes(Buffer.concat(conn.out)), expected);
  });
});

describe('the 101 and what onOpen sends leave in one write', () => {
  /** Records the engine commands in order: a write, or a timer re-arm. */
  class RecordingConnection extends FakeConnection {
    readonly ops: string[] = [];
    override write(b: Uint8Array | string): boolean {
      this.ops.push(Buffer.from(b as Uint8Array).toString('latin1').startsWith('HTTP/1.1 101') ? 'write 101' : 'write');
      return super.write(b);
    }
    override setTimeout(): void {
      this.ops.push('timeout');
    }
  }
  // The engine gathers only adjacent writes to one connection into one sendmsg: a timer
  // command between the 101 and the welcome cost a second sendmsg per upgrade.
  for (const via of ['own port', 'HTTP server'] as const) {
    test(`with a heartbeat and a handshake timeout, no command separates them (${via})`, () => {
      const ws = createWebSocketHandler({
        pingInterval: 30_000,
        handshakeTimeout: 5_000,
        onOpen(s) {
          s.send('welcome');
        },
      });
      const handler = via === 'own port' ? ws : createHttpHandler({ onUpgrade: ws.upgradeHook() });
      const conn = new RecordingConnection();
      drive(handler, conn, [Buffer.from(REQUEST, 'latin1')]);
      const at = conn.ops.indexOf('write 101');
      assert.ok(at >= 0, conn.ops.join(', '));
      assert.deepEqual(conn.ops.slice(at), ['write 101', 'write'], conn.ops.join(', '));
      assert.deepEqual(echoes(Buffer.concat(conn.out)), [[1, 'welcome']]);
    });
  }
});

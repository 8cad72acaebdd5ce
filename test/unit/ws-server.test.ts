/**
 * The WebSocket server's upgrade paths without sockets: connections are fakes that follow the
 * engine's `onData` contract (unconsumed bytes are presented again, followed by the next ones),
 * so every split of the bytes can be tried. Over a socket: test/integration/ws-server.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Action, type CloseReason, type Connection, type Handler } from '../../src/core/index.js';
import fc from 'fast-check';
import { HttpRequest, RequestParser, UPGRADE_IN_PLACE, UPGRADE_QUICK, createHttpHandler, type HttpHandlerOptions, type InPlaceUpgrade, type RequestHead, type UpgradeHook } from '../../src/protocols/http1/index.js';
import { createWebSocketHandler, type WebSocketHandler, type WebSocketServerOptions } from '../../src/protocols/ws/server.js';
import { quickUpgradeFor } from '../../src/protocols/ws/handshake.js';
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

describe('the quick path behind the HTTP server (a plain upgrade read from its bytes)', () => {
  /** Counts RequestParser.execute calls while `fn` runs: 0 means no request was parsed. */
  function parses(fn: () => void): number {
    const original = RequestParser.prototype.execute;
    let n = 0;
    RequestParser.prototype.execute = function (this: RequestParser, data: Uint8Array) {
      n++;
      return original.call(this, data);
    };
    try {
      fn();
    } finally {
      RequestParser.prototype.execute = original;
    }
    return n;
  }

  /** The hook without its quick path: every upgrade goes through the parser. */
  function parsedOnly(hook: UpgradeHook): UpgradeHook {
    return Object.assign((req: HttpRequest, conn: Connection, head: Buffer) => hook(req, conn, head), {
      [UPGRADE_IN_PLACE]: (hook as unknown as InPlaceUpgrade)[UPGRADE_IN_PLACE],
    });
  }

  /** A connection that remembers the last timeout armed. */
  class TimedConnection extends FakeConnection {
    timeout: number | undefined;
    override setTimeout(ms?: number): void {
      this.timeout = ms;
    }
  }

  /** What onUpgrade saw of a request, every RequestHead field read through. */
  const seen = (req: RequestHead) => ({
    method: req.method, target: req.target, versionMinor: req.versionMinor, headers: req.headers.map(([n, v]) => [n, v]), host: req.host,
    contentLength: req.contentLength, chunked: req.chunked, keepAlive: req.keepAlive, upgrade: req.upgrade, upgradeProtocol: req.upgradeProtocol,
    expectContinue: req.expectContinue,
  });

  /** A server whose onUpgrade (unless `hook` is false) records the request and decides by an `X-Verdict` field. */
  function recordingServer(opts: Partial<WebSocketServerOptions>, hook: boolean, log: unknown[]): WebSocketHandler {
    return createWebSocketHandler({
      ...opts,
      ...(hook
        ? {
            onUpgrade(req: RequestHead) {
              log.push(seen(req));
              const verdict = req.headers.find(([n]) => n.toLowerCase() === 'x-verdict')?.[1];
              if (verdict === 'no') return false;
              if (verdict === '401') return { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } };
              if (verdict === 'throw') throw new Error('hook failed');
              return verdict === 'data' ? { target: req.target } : undefined;
            },
          }
        : {}),
      onOpen(ws) {
        ws.send(`open ${JSON.stringify(ws.data ?? null)}`);
      },
      onMessage(ws, data, isBinary) {
        if (!isBinary && data.toString() === 'throw') throw new Error('onMessage failed');
        ws.send(data, isBinary);
      },
      onClose(ws, code) {
        log.push(`closed ${code}`);
      },
    });
  }

  /**
   * Drive `chunks` through an HTTP server (with `http` options) in front of a recording server,
   * then close the connection as the engine would: what was written, the connection's state,
   * what onUpgrade saw, what reached onError and onClose.
   */
  function run(quick: boolean, opts: Partial<WebSocketServerOptions>, chunks: Buffer[], hook = true, httpOptions: HttpHandlerOptions = {}) {
    const log: unknown[] = [];
    const errors: string[] = [];
    const ws = recordingServer(opts, hook, log);
    const upgrade = ws.upgradeHook();
    const http = createHttpHandler({ ...httpOptions, onUpgrade: quick ? upgrade : parsedOnly(upgrade), onError: (err, req) => void errors.push(`${err.message} ${req.method} ${req.target}`) });
    const conn = new TimedConnection();
    // As the engine: Action.Close is a close after the writes; a callback that throws resets
    // the connection ('handler-error').
    let failed = '';
    const engine: Handler = { ...http, onData: (c, data) => {
      try {
        const r = http.onData!(c, data);
        if (r === Action.Close) c.close();
        return r;
      } catch (err) {
        failed = (err as Error).message;
        c.destroy();
        return data.length;
      }
    } };
    const r = drive(engine, conn, chunks);
    const state = { written: r.written.toString('latin1'), held: r.held, open: conn.open, tag: conn.tag, timeout: conn.timeout, clients: ws.clients, failed };
    http.onClose!(conn as unknown as Connection, { kind: failed === '' ? 'end' : 'error' } as CloseReason);
    return { ...state, clientsAfterClose: ws.clients, log, errors };
  }

  const FIELD_POOL: [string, string][] = [
    ['Host', 'example.com'], ['host', 'other.example:8080'], ['Upgrade', 'websocket'], ['upgrade', 'WebSocket'], ['Upgrade', 'h2c, websocket'],
    ['Connection', 'Upgrade'], ['connection', 'keep-alive, upgrade'], ['Connection', 'close'], ['Sec-WebSocket-Key', KEY],
    ['sec-websocket-key', 'AAAAAAAAAAAAAAAAAAAAAA=='], ['Sec-WebSocket-Key', 'short=='], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Version', '8'],
    ['Sec-WebSocket-Protocol', 'chat'], ['Sec-WebSocket-Extensions', 'permessage-deflate'], ['Content-Length', '0'], ['Content-Length', '3'],
    ['Transfer-Encoding', 'chunked'], ['Origin', 'https://example.com'], ['X-Verdict', 'no'], ['X-Verdict', '401'], ['X-Verdict', 'data'],
    ['X-Verdict', 'throw'], ['X-Spaces', '  padded value \t'], ['Authorization', 'Bearer abc.def.ghi'], ['Bad Name', 'x'], ['X-Empty', ''],
    ['Connection', 'keep-alive upgrade'], ['X-Long', 'v'.repeat(120)],
  ];
  const PLAIN: [string, string][] = [['Host', 'example.com'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', KEY], ['Sec-WebSocket-Version', '13']];
  const headOf = (line: string, fields: [string, string][]): string => `${line}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;

  test('every request gets the same answer, the same request in onUpgrade and the same connection state as through the parser', () => {
    const request = fc.record({
      line: fc.constantFrom('GET /socket HTTP/1.1', 'GET /ws?topics=a,b&token=x HTTP/1.1', 'GET / HTTP/1.1', 'POST /socket HTTP/1.1', 'GET /socket HTTP/1.0', 'GET * HTTP/1.1', `GET /${'a'.repeat(2100)} HTTP/1.1`, 'GET  /two-spaces HTTP/1.1'),
      // Mostly the plain request, with some of its fields left out or repeated, others mixed in.
      fields: fc.tuple(fc.subarray(PLAIN, { minLength: 3 }), fc.array(fc.constantFrom(...FIELD_POOL), { maxLength: 4 }), fc.boolean())
        .map(([plain, extra, extraFirst]) => (extraFirst ? [...extra, ...plain] : [...plain, ...extra])),
      after: fc.constantFrom(Buffer.alloc(0), frame(1, 'hello'), Buffer.concat([frame(2, Buffer.from('bin')), frame(1, 'partial').subarray(0, 4)]), frame(1, 'throw')),
      server: fc.constantFrom<Partial<WebSocketServerOptions>>({}, { pingInterval: 0, handshakeTimeout: 0 }, { pingInterval: 30_000 }, { perMessageDeflate: true }, { protocols: ['chat'] }),
      hook: fc.boolean(),
      http: fc.constantFrom<HttpHandlerOptions>({}, { maxHeaderBytes: 200 }, { maxHeaderBytes: 64 }, { maxUriLength: 100 }, { maxHeaders: 6 }),
      split: fc.nat(),
    });
    fc.assert(
      fc.property(request, ({ line, fields, after, server, hook, http, split }) => {
        const bytes = Buffer.concat([Buffer.from(headOf(line, fields), 'latin1'), after]);
        const at = split % (bytes.length + 1);
        const chunks = at === 0 ? [bytes] : [bytes.subarray(0, at), bytes.subarray(at)];
        assert.deepEqual(run(true, server, chunks, hook, http), run(false, server, chunks, hook, http));
      }),
      { numRuns: 2000 },
    );
  });

  test('a plain upgrade as the first bytes is not parsed; the same through the parser is', () => {
    const bytes = [Buffer.from(REQUEST, 'latin1')];
    let quick: ReturnType<typeof run> | undefined;
    let parsed: ReturnType<typeof run> | undefined;
    assert.equal(parses(() => void (quick = run(true, {}, bytes))), 0);
    assert.ok(parses(() => void (parsed = run(false, {}, bytes))) > 0);
    assert.deepEqual(quick, parsed);
    assert.match(quick!.written, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    // A head in two reads is parsed (the quick path takes a whole head in the first read only).
    assert.ok(parses(() => void run(true, {}, [bytes[0].subarray(0, 20), bytes[0].subarray(20)])) > 0);
  });

  test('without a heartbeat or handshake timeout, the HTTP server\'s first-request timeout is disarmed', () => {
    for (const quick of [true, false]) {
      const r = run(quick, { pingInterval: 0, handshakeTimeout: 0 }, [Buffer.from(REQUEST, 'latin1')]);
      assert.match(r.written, /^HTTP\/1\.1 101 /);
      assert.equal(r.timeout, 0, `quick ${quick}`);
    }
  });

  test('an exception in onUpgrade reaches onError with the request, and only that connection is destroyed', () => {
    const bytes = [Buffer.from(REQUEST.replace('\r\n\r\n', '\r\nX-Verdict: throw\r\n\r\n'), 'latin1')];
    let r: ReturnType<typeof run> | undefined;
    assert.equal(parses(() => void (r = run(true, {}, bytes))), 1); // only to build onError's request
    assert.deepEqual(r!.errors, ['hook failed GET /socket']);
    assert.equal(r!.open, false);
    assert.equal(r!.written, '');
    assert.deepEqual(r, run(false, {}, bytes));
  });

  test('a callback that throws on a frame that came with the head resets only that connection, whose onClose still runs', () => {
    const bytes = [Buffer.concat([Buffer.from(REQUEST, 'latin1'), frame(1, 'throw')])];
    for (const quick of [true, false]) {
      const r = run(quick, {}, bytes);
      assert.equal(r.failed, 'onMessage failed', `quick ${quick}`);
      assert.equal(r.open, false);
      assert.deepEqual(r.errors, []);
      assert.equal(r.clients, 1);
      assert.equal(r.clientsAfterClose, 0, `quick ${quick}: onClose reached the WebSocket handler`);
      assert.equal(r.log.at(-1), 'closed 1006');
    }
  });

  test('a request the parser limits refuse is refused as before (the quick path steps aside)', () => {
    const bytes = [Buffer.from(REQUEST, 'latin1')];
    for (const http of [{ maxHeaderBytes: REQUEST.length - 1 }, { maxUriLength: 4 }, { maxHeaders: 4 }]) {
      const quick = run(true, {}, bytes, true, http);
      assert.deepEqual(quick, run(false, {}, bytes, true, http));
      assert.match(quick.written, /^HTTP\/1\.1 4\d\d /, JSON.stringify(http));
    }
    // exactly at the limit: served
    assert.match(run(true, {}, bytes, true, { maxHeaderBytes: REQUEST.length }).written, /^HTTP\/1\.1 101 /);
  });

  test('at 64 field lines a plain upgrade is read in place, at 65 it is parsed; both answer alike; during shutdown: 503 either way', () => {
    for (const extra of [59, 60]) {
      const fields: [string, string][] = [...Array.from({ length: extra }, (_, i): [string, string] => [`X-F${i}`, `${i}`])];
      const bytes = [Buffer.from(REQUEST.replace('\r\n\r\n', `\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`), 'latin1')];
      let quick: ReturnType<typeof run> | undefined;
      const n = parses(() => void (quick = run(true, {}, bytes)));
      assert.equal(n === 0, extra + 5 <= 64, `${extra + 5} field lines`);
      assert.deepEqual(quick, run(false, {}, bytes));
      assert.match(quick!.written, /^HTTP\/1\.1 101 /);
    }
    const ws = echoServer();
    ws.onShutdown!();
    for (const onUpgrade of [ws.upgradeHook(), parsedOnly(ws.upgradeHook())]) {
      const r = drive(createHttpHandler({ onUpgrade }), new FakeConnection(), [Buffer.from(REQUEST, 'latin1')]);
      assert.match(r.written.toString('latin1'), /^HTTP\/1\.1 503 /);
    }
  });

  test('quickUpgradeFor(hook, path) takes only that path, with or without a query; other targets reach the hook parsed', () => {
    const targets = ['/ws', '/ws?topics=a', '/ws?', '/wsx', '/w', '/ws/', '/ws#f', '/other?/ws', 'http://h/ws'];
    for (const target of targets) {
      const ws = echoServer();
      const hook = ws.upgradeHook();
      const inPlace = (hook as unknown as InPlaceUpgrade)[UPGRADE_IN_PLACE];
      const routed: string[] = [];
      const onUpgrade = Object.assign((req: HttpRequest, conn: Connection, head: Buffer) => hook(req, conn, head), {
        [UPGRADE_IN_PLACE]: (req: HttpRequest, conn: Connection) => {
          routed.push(req.path);
          return req.path === '/ws' ? inPlace(req, conn) : void conn.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        },
        [UPGRADE_QUICK]: quickUpgradeFor(hook, '/ws'),
      });
      const http = createHttpHandler({ onUpgrade });
      const conn = new FakeConnection();
      let written = '';
      const n = parses(() => void (written = drive(http, conn, [Buffer.from(REQUEST.replace('/socket', target), 'latin1')]).written.toString('latin1')));
      const quick = target === '/ws' || target.startsWith('/ws?');
      assert.equal(n === 0, quick, target);
      assert.equal(written.startsWith('HTTP/1.1 101 '), quick || routed[0] === '/ws', `${target}: ${written.slice(0, 30)}`);
    }
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

/**
 * The HTTP/1.1 server over loopback on every backend, with fetch (undici) and raw sockets:
 * keep-alive, pipelining, chunked bodies both ways, 100-continue, HEAD, upgrades, timeouts,
 * and every smuggling and limit case answered with its status while the server stays healthy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHttpHandler, type HttpHandlerOptions, type HttpRequest } from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, firstDiff, payload, rawClient, sleep, startServer, waitFor, type RawClient, type TestServer } from '../helpers/net.js';

interface Reply {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * Complete responses at the start of `buf`, in order. `bodiless[i]` marks the i-th final
 * response as an answer to HEAD. 1xx responses are listed too.
 */
function parseReplies(buf: Buffer, bodiless: boolean[] = []): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  let finals = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end === -1) return out;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    let pos = end + 4;
    let body: Buffer = Buffer.alloc(0);
    if (status >= 200 && !bodiless[finals] && status !== 204 && status !== 304) {
      if (headers.get('transfer-encoding') === 'chunked') {
        const parts: Buffer[] = [];
        for (;;) {
          const lineEnd = buf.indexOf('\r\n', pos);
          if (lineEnd === -1) return out;
          const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16);
          if (buf.length < lineEnd + 2 + size + 2) return out;
          parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
          pos = lineEnd + 2 + size + 2;
          if (size === 0) break;
        }
        body = Buffer.concat(parts);
      } else {
        const len = Number(headers.get('content-length') ?? buf.length - pos);
        if (buf.length < pos + len) return out;
        body = buf.subarray(pos, pos + len);
        pos += len;
      }
    }
    if (status >= 200) finals++;
    out.push({ status, headers, body });
    at = pos;
  }
}

/** Wait for `n` complete responses (or the close), and return them. */
async function replies(c: RawClient, n: number, bodiless: boolean[] = []): Promise<Reply[]> {
  await waitFor(() => parseReplies(c.bytes(), bodiless).length >= n || c.closed, `${n} responses`);
  return parseReplies(c.bytes(), bodiless);
}

/** One raw exchange on a new connection: the responses, once the server closed. */
async function exchangeUntilClose(port: number, bytes: string | Buffer): Promise<Reply[]> {
  const c = await rawClient(port);
  await c.send(bytes);
  await c.waitClosed();
  return parseReplies(c.bytes());
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

const LIMITS = { maxUriLength: 1024, maxHeaderBytes: 4096, maxBodyBytes: 64 * 1024, maxHeaders: 20 };

/** Request bytes that must be refused, with the status each gets. */
const BAD: [name: string, bytes: string, status: number][] = [
  ['Content-Length with Transfer-Encoding', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['duplicate Content-Length', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx', 400],
  ['signed Content-Length', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\nx', 400],
  ['Transfer-Encoding not ending in chunked', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 400],
  ['unknown transfer coding', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
  ['Transfer-Encoding in HTTP/1.0', 'POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['bare LF', 'GET / HTTP/1.1\nHost: t\n\n', 400],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n', 400],
  ['whitespace before colon', 'GET / HTTP/1.1\r\nHost : t\r\n\r\n', 400],
  ['missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['invalid chunk size', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ['chunk data without CRLF', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n', 400],
  ['unsupported version', 'GET / HTTP/2.0\r\nHost: t\r\n\r\n', 505],
  ['URI too long', `GET /${'a'.repeat(2000)} HTTP/1.1\r\nHost: t\r\n\r\n`, 414],
  ['head too large', `GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(5000)}\r\n\r\n`, 431],
  ['too many fields', `GET / HTTP/1.1\r\nHost: t\r\n${'X: 1\r\n'.repeat(30)}\r\n`, 431],
  ['Content-Length past maxBodyBytes', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n', 413],
  ['chunked body past maxBodyBytes', `POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${(40_000).toString(16)}\r\n${'a'.repeat(40_000)}\r\n${(40_000).toString(16)}\r\n`, 413],
];

function routes(errors: Error[]): HttpHandlerOptions {
  return {
    ...LIMITS,
    onError: (err) => void errors.push(err),
    routes: {
      'GET /': (_req, res) => res.end('hello'),
      'GET /conn': (req, res) => res.end(String(req.conn.id)),
      'GET /query': (req, res) => res.end(`${req.path}|${req.query}|${req.header('X-TEST') ?? ''}`),
      'GET /fields-later': async (req, res) => {
        await sleep(1); // the request's bytes are long gone: its fields are read from a copy
        res.end(Buffer.from(JSON.stringify([req.headers, req.header('x-b')]), 'latin1'));
      },
      'POST /echo': (req, res) => {
        res.setHeader('X-Trailers', String(req.trailers?.length ?? 0));
        res.end(req.body);
      },
      'GET /chunked': (_req, res) => {
        res.write('a');
        res.write(Buffer.from('bb'));
        res.end('ccc');
      },
      'GET /slow': async (_req, res) => {
        await sleep(30);
        res.write('sl');
        await sleep(10);
        res.end('ow');
      },
      'GET /inject': (_req, res) => {
        res.setHeader('X-Evil', 'a\r\nSet-Cookie: x=1');
        res.end('unreachable');
      },
      'GET /fields-refused': (_req, res) => {
        // Every bad name and value is refused, however often good ones were set before.
        const refused: string[] = [];
        for (const [name, value] of [['X-Ok', 'v'], ['', 'v'], ['X Y', 'v'], ['X-Ok', ''], ['X-Ok', 'a\nb'], ['X-Ok', '\x7f']]) {
          try {
            res.setHeader(name, value);
          } catch (err) {
            refused.push(`${name}=${JSON.stringify(value)} ${(err as { code?: string }).code}`);
          }
        }
        res.end(refused.join('\n'));
      },
      'GET /throw': () => {
        throw new Error('boom');
      },
      'GET /reject': async () => {
        await sleep(1);
        throw new Error('async boom');
      },
    },
  };
}

async function expectHealthy(port: number): Promise<void> {
  const r = await fetch(`http://${HOST}:${port}/`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'hello');
}

function suite(backend: BackendName): void {
  describe(`http server (${backend})`, () => {
    let srv: TestServer;
    const errors: Error[] = [];
    let base = '';

    before(async () => {
      srv = await startServer(backend, createHttpHandler(routes(errors)));
      base = `http://${HOST}:${srv.port}`;
    });
    after(() => srv?.reactor.close(1000));

    test('fetch: several requests share one keep-alive connection, idle ones hold no context', GUARD, async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${base}/conn`);
        assert.equal(r.status, 200);
        assert.ok(r.headers.get('date'));
        ids.add(await r.text());
      }
      // undici alternates between two pooled connections (node:http behaves the same).
      assert.ok(ids.size <= 2, `connections reused: ${[...ids].join(',')}`);
      for (const id of ids) assert.equal(srv.reactor.connection(Number(id)).context, undefined, 'no state between requests');
    });

    test('raw: sequential requests on one keep-alive connection', GUARD, async () => {
      const c = await rawClient(srv.port);
      for (let i = 1; i <= 5; i++) {
        await c.send(i % 2 === 0 ? GET('/conn') : 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi');
        const got = await replies(c, i);
        assert.equal(got.length, i);
      }
      const got = parseReplies(c.bytes());
      assert.equal(got[1].body.toString(), got[3].body.toString(), 'same connection id');
      assert.deepEqual(got.filter((_, k) => k % 2 === 0).map((r) => r.body.toString()), ['hi', 'hi', 'hi']);
      assert.ok(!c.closed);
      c.destroy();
    });

    test('fetch: path, query, case-insensitive header lookup, 404 and 405', GUARD, async () => {
      const r = await fetch(`${base}/query?a=1&b`, { headers: { 'x-test': 'yes' } });
      assert.equal(await r.text(), '/query|a=1&b|yes');
      const missing = await fetch(`${base}/nope`);
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();
      const wrong = await fetch(`${base}/`, { method: 'DELETE' });
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
      await wrong.arrayBuffer();
    });

    test('raw: fields read after the handler returned, head whole or one byte at a time', GUARD, async () => {
      const head = 'GET /fields-later HTTP/1.1\r\nHost: t\r\nX-A:  a b \t\r\nx-b:\r\nX-B: caf\xe9\r\n\r\n';
      const expected = [[['Host', 't'], ['X-A', 'a b'], ['x-b', ''], ['X-B', 'caf\xe9']], ', caf\xe9'];
      for (const split of [false, true]) {
        const c = await rawClient(srv.port);
        if (split) for (const ch of head) await c.send(Buffer.from(ch, 'latin1'));
        else await c.send(Buffer.from(head, 'latin1'));
        const [got] = await replies(c, 1);
        assert.deepEqual(JSON.parse(got.body.toString('latin1')), expected);
        c.destroy();
      }
    });

    test('fetch: HEAD sends the GET headers and no body', GUARD, async () => {
      const r = await fetch(`${base}/`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-length'), '5');
      assert.equal((await r.arrayBuffer()).byteLength, 0);
      // On a raw socket: the next response follows the head at once (no stray body bytes).
      const c = await rawClient(srv.port);
      await c.send(`HEAD / HTTP/1.1\r\nHost: t\r\n\r\n${GET('/')}`);
      const [head, get] = await replies(c, 2, [true]);
      assert.equal(head.headers.get('content-length'), '5');
      assert.equal(head.body.length, 0);
      assert.equal(get.body.toString(), 'hello');
      assert.ok(c.bytes().toString().endsWith('\r\n\r\nhello'));
      c.destroy();
    });

    test('fetch: chunked response, and a streamed (chunked) request body', GUARD, async () => {
      const r = await fetch(`${base}/chunked`);
      assert.equal(r.headers.get('transfer-encoding'), 'chunked');
      assert.equal(await r.text(), 'abbccc');
      const parts = ['one ', 'two ', 'three'];
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          const p = parts.shift();
          if (p === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(p));
        },
      });
      const init = { method: 'POST', body: stream, duplex: 'half' } as RequestInit;
      const echoed = await fetch(`${base}/echo`, init);
      assert.equal(await echoed.text(), 'one two three');
      for (const size of [1, 16 * 1024, 50_000]) {
        const data = payload(size);
        const r2 = await fetch(`${base}/echo`, { method: 'POST', body: new Uint8Array(data) });
        assert.equal(firstDiff(Buffer.from(await r2.arrayBuffer()), data), -1, `${size}-byte body echoed`);
      }
    });

    test('raw: chunked request body split at every byte, with extensions and trailers', GUARD, async () => {
      const req = Buffer.from('POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n');
      const c = await rawClient(srv.port);
      for (let i = 0; i < req.length; i++) {
        await c.send(req.subarray(i, i + 1));
        if (i % 16 === 0) await sleep(1); // let reads split
      }
      const [r] = await replies(c, 1);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'abcde');
      assert.equal(r.headers.get('x-trailers'), '1');
      c.destroy();
    });

    test('raw: pipelined requests are answered in order, a slow one holding back the fast ones', GUARD, async () => {
      const c = await rawClient(srv.port);
      await c.send(GET('/slow') + GET('/') + 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz' + GET('/chunked') + GET('/query?z'));
      const got = await replies(c, 5);
      assert.deepEqual(got.map((r) => r.body.toString()), ['slow', 'hello', 'xyz', 'abbccc', '/query|z|']);
      assert.ok(!c.closed);
      c.destroy();
    });

    test('raw: Expect: 100-continue gets 100 Continue before the body is sent', GUARD, async () => {
      const c = await rawClient(srv.port);
      await c.send('POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
      await waitFor(() => c.text().includes('\r\n\r\n'), '100 Continue');
      assert.equal(c.text(), 'HTTP/1.1 100 Continue\r\n\r\n');
      await c.send('12345');
      const got = await replies(c, 2);
      assert.equal(got[0].status, 100);
      assert.equal(got[1].status, 200);
      assert.equal(got[1].body.toString(), '12345');
      c.destroy();
    });

    test('raw: an Expect whose Content-Length is too large gets 413 instead of 100', GUARD, async () => {
      const got = await exchangeUntilClose(srv.port, 'POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n');
      assert.deepEqual(got.map((r) => r.status), [413]);
    });

    test('Connection: close and HTTP/1.0', GUARD, async () => {
      let got = await exchangeUntilClose(srv.port, GET('/', 'Connection: close\r\n') + GET('/'));
      assert.equal(got.length, 1, 'nothing after the close');
      assert.equal(got[0].headers.get('connection'), 'close');
      got = await exchangeUntilClose(srv.port, 'GET / HTTP/1.0\r\n\r\n');
      assert.equal(got[0].body.toString(), 'hello');
      assert.equal(got[0].headers.get('connection'), 'close');
      const c = await rawClient(srv.port);
      await c.send('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      await c.waitClosed(); // a body of unknown length in HTTP/1.0 ends with the connection
      const text = c.text();
      assert.match(text, /Connection: keep-alive\r\n\r\nhello/);
      assert.ok(text.endsWith('Connection: close\r\n\r\nabbccc'), text);
    });

    for (const [name, bytes, status] of BAD) {
      test(`refused: ${name} → ${status}, then close; the server stays healthy`, GUARD, async () => {
        const got = await exchangeUntilClose(srv.port, bytes);
        assert.equal(got.length, 1, `one response, got ${got.length}`);
        assert.equal(got[0].status, status);
        assert.equal(got[0].headers.get('connection'), 'close');
        await expectHealthy(srv.port);
      });
    }

    test('refused after a good pipelined request: its answer first, then the error', GUARD, async () => {
      const got = await exchangeUntilClose(srv.port, GET('/slow') + 'GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
      assert.deepEqual(got.map((r) => r.status), [200, 400]);
      assert.equal(got[0].body.toString(), 'slow');
    });

    test('setHeader refuses bad names and values every time', GUARD, async () => {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${base}/fields-refused`);
        assert.equal(r.headers.get('x-ok'), '');
        assert.deepEqual((await r.text()).split('\n'), [
          '="v" ERR_C1M_HTTP_INVALID_FIELD',
          'X Y="v" ERR_C1M_HTTP_INVALID_FIELD',
          'X-Ok="a\\nb" ERR_C1M_HTTP_INVALID_FIELD',
          'X-Ok="\u007f" ERR_C1M_HTTP_INVALID_FIELD',
        ]);
      }
    });

    test('a route handler that throws (or rejects) gets 500 and its connection closes', GUARD, async () => {
      const before = errors.length;
      for (const path of ['/throw', '/reject', '/inject']) {
        const got = await exchangeUntilClose(srv.port, GET(path) + GET('/'));
        assert.deepEqual(got.map((r) => r.status), [500]);
        assert.equal(got[0].headers.get('connection'), 'close');
      }
      const codes = errors.slice(before).map((e) => (e as { code?: string }).code ?? e.message);
      assert.deepEqual(codes, ['boom', 'async boom', 'ERR_C1M_HTTP_INVALID_FIELD']);
      await expectHealthy(srv.port);
      assert.deepEqual(srv.errors, []);
    });

    test('without an upgrade hook, an upgrade request is served as an ordinary one', GUARD, async () => {
      const c = await rawClient(srv.port);
      await c.send(GET('/', 'Connection: upgrade\r\nUpgrade: websocket\r\n') + GET('/query?after'));
      const got = await replies(c, 2);
      assert.deepEqual(got.map((r) => r.body.toString()), ['hello', '/query|after|']);
      c.destroy();
    });
  });

  test(`a new connection waits for its first request headerTimeout, not keepAliveTimeout (${backend})`, GUARD, async () => {
    const handler = createHttpHandler({ headerTimeout: 3000, keepAliveTimeout: 100, routes: { 'GET /': (_req, res) => res.end('hello') } });
    const s = await startServer(backend, handler, { timerResolution: 20 });
    try {
      const c = await rawClient(s.port);
      await sleep(600); // six keep-alive timeouts: a client slow to send its first request
      assert.equal(c.closed, false, 'closed before its first request arrived');
      await c.send(GET('/'));
      const [r] = await replies(c, 1);
      assert.equal(r.status, 200);
      await c.waitClosed(); // then the keep-alive timeout applies
    } finally {
      await s.reactor.close(1000);
    }
  });

  describe(`http server hooks and timeouts (${backend})`, () => {
    let srv: TestServer;
    const upgrades: HttpRequest[] = [];

    before(async () => {
      const handler = createHttpHandler({
        headerTimeout: 400,
        keepAliveTimeout: 400,
        maxPipelined: 2,
        routes: {
          'GET /': (_req, res) => res.end('hello'),
          'GET /later': async (req, res) => {
            await sleep(5);
            res.end(req.query);
          },
        },
        onUpgrade(req, conn, head) {
          upgrades.push(req);
          if (req.path === '/refuse') {
            conn.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
            return;
          }
          conn.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n');
          conn.write(Buffer.concat([Buffer.from('['), head, Buffer.from(']')]));
          return { onData: (c, data) => void c.write(data) };
        },
      });
      srv = await startServer(backend, handler, { timerResolution: 50 });
    });
    after(() => srv?.reactor.close(1000));

    test('onUpgrade takes the connection with the bytes that followed the request', GUARD, async () => {
      const c = await rawClient(srv.port);
      await c.send(GET('/x') + GET('/ws', 'Connection: Upgrade\r\nUpgrade: echo\r\n') + 'early');
      await waitFor(() => c.text().includes('[early]'), 'the upgrade head');
      await c.send('later');
      await waitFor(() => c.text().endsWith('[early]later'), 'echo after the upgrade');
      const [first, second] = parseReplies(c.bytes());
      assert.equal(first.status, 404, 'the pipelined request before the upgrade is answered first');
      assert.equal(second.status, 101);
      assert.equal(upgrades.at(-1)?.path, '/ws');
      c.destroy();
      const refused = await exchangeUntilClose(srv.port, GET('/refuse', 'Connection: upgrade\r\nUpgrade: echo\r\n'));
      assert.deepEqual(refused.map((r) => r.status), [400]);
    });

    test('past maxPipelined waiting responses, reading pauses and resumes: every answer, in order', GUARD, async () => {
      const c = await rawClient(srv.port);
      const n = 12;
      await c.send(Array.from({ length: n }, (_, i) => GET(`/later?${i}`)).join(''));
      const got = await replies(c, n);
      assert.deepEqual(got.map((r) => r.body.toString()), Array.from({ length: n }, (_, i) => String(i)));
      c.destroy();
    });

    test('an incomplete head gets 408 and a close (slowloris, one byte at a time)', GUARD, async () => {
      const c = await rawClient(srv.port);
      const req = GET('/', 'X-Slow: ' + 'a'.repeat(200) + '\r\n');
      for (let i = 0; i < req.length && !c.closed; i++) {
        await c.send(req[i]).catch(() => undefined);
        await sleep(20);
      }
      await c.waitClosed();
      assert.match(c.text(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(c.text(), /Connection: close/);
      await expectHealthy(srv.port);
    });

    test('an idle keep-alive connection is closed without a response', GUARD, async () => {
      const c = await rawClient(srv.port);
      await c.send(GET('/'));
      await replies(c, 1);
      const length = c.length;
      await c.waitClosed();
      assert.equal(c.length, length);
    });
  });
}

for (const backend of backends) suite(backend);

/**
 * A real browser against the c1m server, on every backend: headless Chromium (playwright-core)
 * loads a page from the c1m HTTP server and, on the same port, upgrades to a WebSocket served
 * by `createWebSocketHandler` (handed over through the HTTP server's upgrade hook). The page
 * exchanges text (non-ASCII included), binary (ArrayBuffer) and 1 MiB messages, receives
 * messages the server starts, and closes cleanly both ways (code, reason, wasClean), with and
 * without permessage-deflate.
 *
 * Chromium is /usr/bin/chromium (C1M_CHROMIUM overrides). When it is missing the suite is
 * skipped, unless C1M_REQUIRE_NATIVE=1 (CI), where that is a failure.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  createHttpHandler, createWebSocketHandler, type WebSocket, type WebSocketHandler, type WebSocketServerOptions,
} from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { CHROMIUM, CHROMIUM_MISSING as MISSING, launchChromium } from '../helpers/browser.js';
import { GUARD, HOST, startServer, waitFor, within, type TestServer } from '../helpers/net.js';

const REQUIRED = process.env.C1M_REQUIRE_NATIVE === '1';

/**
 * The page: a harness the test drives with `page.evaluate`. Messages are queued as plain
 * values; large ones as their length and SHA-256, so 1 MiB does not cross the CDP pipe.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>c1m websocket</title></head><body>
<script>
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
async function summarize(data) {
  if (typeof data === 'string') {
    if (data.length <= 4096) return { type: 'text', text: data };
    const bytes = new TextEncoder().encode(data);
    return { type: 'text', length: bytes.length, sha256: hex(await crypto.subtle.digest('SHA-256', bytes)) };
  }
  if (data.byteLength <= 4096) return { type: 'binary', hex: hex(data) };
  return { type: 'binary', length: data.byteLength, sha256: hex(await crypto.subtle.digest('SHA-256', data)) };
}
window.harness = {
  socket: null, inbox: [], closed: null, error: false,
  open(url, protocols) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      ws.binaryType = 'arraybuffer';
      this.socket = ws;
      let chain = Promise.resolve();
      ws.onmessage = (e) => { chain = chain.then(() => summarize(e.data)).then((m) => this.inbox.push(m)); };
      ws.onerror = () => { this.error = true; reject(new Error('WebSocket error before open')); };
      ws.onclose = (e) => { chain.then(() => { this.closed = { wasClean: e.wasClean, code: e.code, reason: e.reason }; }); };
      ws.onopen = () => resolve({ protocol: ws.protocol, extensions: ws.extensions });
    });
  },
  send(kind, arg) {
    if (kind === 'text') this.socket.send(arg);
    else if (kind === 'bytes') this.socket.send(new Uint8Array(arg).buffer);
    else if (kind === 'bigText') this.socket.send(bigText());
    else if (kind === 'bigBinary') this.socket.send(bigBinary().buffer);
  },
  async digest(kind) {
    const data = kind === 'bigText' ? new TextEncoder().encode(bigText()) : bigBinary();
    return { length: data.byteLength, sha256: hex(await crypto.subtle.digest('SHA-256', data)) };
  },
};
// 1 MiB messages, the same on both sides of the test.
function bigText() { return 'c1m é€😀 '.repeat(Math.floor(1048576 / 14)); }
function bigBinary() { const b = new Uint8Array(1048576); for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8)) & 255; return b; }
</script></body></html>`;

const BIG_TEXT = Buffer.from('c1m é€😀 '.repeat(Math.floor(1048576 / 14)), 'utf8');
const BIG_BINARY = Buffer.from(Array.from({ length: 1048576 }, (_, i) => (i * 31 + (i >> 8)) & 255));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

type Inbound = { type: 'text'; text?: string; length?: number; sha256?: string } | { type: 'binary'; hex?: string; length?: number; sha256?: string };

/**
 * An upgrade hook that hands the connection to a WebSocket handler, which answers the
 * handshake itself: the request head is given back to it as the bytes it would have read.
 */
interface Ctx {
  srv: TestServer;
  url: string;
  opened: WebSocket[];
  received: { isBinary: boolean; length: number; sha256: string }[];
  closes: { code: number; reason: string }[];
}

async function startSite(backend: (typeof backends)[number], deflate: boolean): Promise<Ctx> {
  const opened: WebSocket[] = [];
  const received: Ctx['received'] = [];
  const closes: Ctx['closes'] = [];
  const options: WebSocketServerOptions = {
    protocols: ['c1m.test'],
    perMessageDeflate: deflate,
    onOpen(ws) {
      opened.push(ws);
      ws.send('welcome from c1m');
    },
    onMessage(ws, data, isBinary) {
      received.push({ isBinary, length: data.length, sha256: sha256(data) });
      ws.send(data, isBinary);
    },
    onClose(_ws, code, reason) {
      closes.push({ code, reason });
    },
  };
  const wsHandler = createWebSocketHandler(options);
  const http = createHttpHandler({
    routes: {
      'GET /': (_req, res) => {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(PAGE);
      },
    },
    onUpgrade: wsHandler.upgradeHook(),
  });
  const srv = await startServer(backend, http);
  // The reactor was given to the HTTP handler; the WebSocket handler needs it too (shutdown).
  wsHandler.onReactor?.(srv.reactor);
  return { srv, url: `ws://${HOST}:${srv.port}/socket`, opened, received, closes };
}

/** The next message the page received. */
async function next(page: Page): Promise<Inbound> {
  await page.waitForFunction(() => (window as unknown as { harness: { inbox: unknown[]; closed: unknown } }).harness.inbox.length > 0, undefined, { timeout: 30_000 });
  return page.evaluate(() => (window as unknown as { harness: { inbox: unknown[] } }).harness.inbox.shift()) as Promise<Inbound>;
}

/** The page's close event, once it fired. */
async function closeEvent(page: Page): Promise<{ wasClean: boolean; code: number; reason: string }> {
  await page.waitForFunction(() => (window as unknown as { harness: { closed: unknown } }).harness.closed !== null, undefined, { timeout: 30_000 });
  return page.evaluate(() => (window as unknown as { harness: { closed: { wasClean: boolean; code: number; reason: string } } }).harness.closed);
}

const harness = (page: Page, fn: string, ...args: unknown[]): Promise<unknown> =>
  within(page.evaluate(([f, a]) => {
    const h = (window as unknown as { harness: Record<string, (...x: unknown[]) => unknown> }).harness;
    return h[f as string](...(a as unknown[]));
  }, [fn, args] as const), `harness.${fn}`);

if (MISSING && REQUIRED) {
  test('Chromium is installed', () => {
    throw new Error(`C1M_REQUIRE_NATIVE=1 but Chromium is missing at ${CHROMIUM} (install it, or set C1M_CHROMIUM)`);
  });
}

describe('WebSocket with a real browser (headless Chromium)', { skip: MISSING ? `no Chromium at ${CHROMIUM}` : false }, () => {
  let browser: Browser | undefined;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  for (const backend of backends) {
    for (const deflate of [false, true]) {
      const label = `${backend}${deflate ? ', permessage-deflate' : ''}`;

      test(`page served by c1m talks to c1m over a WebSocket: text, binary, 1 MiB, server pushes, clean close (${label})`, GUARD, async () => {
        const ctx = await startSite(backend, deflate);
        const page = await browser!.newPage();
        try {
          const res = await page.goto(`http://${HOST}:${ctx.srv.port}/`);
          assert.equal(res?.status(), 200);
          assert.equal(await page.title(), 'c1m websocket');

          const opened = (await harness(page, 'open', ctx.url, ['c1m.test'])) as { protocol: string; extensions: string };
          assert.equal(opened.protocol, 'c1m.test');
          if (deflate) assert.match(opened.extensions, /^permessage-deflate/);
          else assert.equal(opened.extensions, '');
          assert.deepEqual(await next(page), { type: 'text', text: 'welcome from c1m' }, 'a message sent from onOpen');

          const greeting = 'héllo wörld ✓ 😀 — Ελληνικά, 日本語';
          await harness(page, 'send', 'text', greeting);
          assert.deepEqual(await next(page), { type: 'text', text: greeting });

          const bytes = Array.from({ length: 256 }, (_, i) => i);
          await harness(page, 'send', 'bytes', bytes);
          assert.deepEqual(await next(page), { type: 'binary', hex: Buffer.from(bytes).toString('hex') });

          // The page's own 1 MiB messages match ours, so both directions are checked.
          assert.deepEqual(await harness(page, 'digest', 'bigText'), { length: BIG_TEXT.length, sha256: sha256(BIG_TEXT) });
          assert.deepEqual(await harness(page, 'digest', 'bigBinary'), { length: BIG_BINARY.length, sha256: sha256(BIG_BINARY) });
          await harness(page, 'send', 'bigText');
          assert.deepEqual(await next(page), { type: 'text', length: BIG_TEXT.length, sha256: sha256(BIG_TEXT) });
          await harness(page, 'send', 'bigBinary');
          assert.deepEqual(await next(page), { type: 'binary', length: BIG_BINARY.length, sha256: sha256(BIG_BINARY) });

          assert.deepEqual(
            ctx.received.map((m) => [m.isBinary, m.length, m.sha256]),
            [
              [false, Buffer.byteLength(greeting), sha256(Buffer.from(greeting))],
              [true, 256, sha256(Buffer.from(bytes))],
              [false, BIG_TEXT.length, sha256(BIG_TEXT)],
              [true, BIG_BINARY.length, sha256(BIG_BINARY)],
            ],
            'what the server received',
          );

          // Messages the server starts on its own.
          assert.equal(ctx.opened.length, 1);
          assert.equal(ctx.opened[0].send('pushed by the server: ✓'), true);
          assert.equal(ctx.opened[0].send(Buffer.from([0xde, 0xad, 0xbe, 0xef])), true);
          assert.deepEqual(await next(page), { type: 'text', text: 'pushed by the server: ✓' });
          assert.deepEqual(await next(page), { type: 'binary', hex: 'deadbeef' });

          // The page closes: both sides see 1000 and the reason.
          await harness(page, 'send', 'text', 'last');
          assert.deepEqual(await next(page), { type: 'text', text: 'last' });
          await within(page.evaluate(() => (window as unknown as { harness: { socket: globalThis.WebSocket } }).harness.socket.close(1000, 'bye ✓')), 'close');
          assert.deepEqual(await closeEvent(page), { wasClean: true, code: 1000, reason: 'bye ✓' });
          await waitFor(() => ctx.closes.length === 1, 'the server to report the close');
          assert.deepEqual(ctx.closes, [{ code: 1000, reason: 'bye ✓' }]);
          assert.equal(ctx.opened[0].readyState, 'closed');
        } finally {
          await page.close();
          await ctx.srv.reactor.close(1000);
        }
        assert.deepEqual(ctx.srv.errors.map(String), []);
      });

      test(`the server closes: the page sees a clean close with its code and reason (${label})`, GUARD, async () => {
        const ctx = await startSite(backend, deflate);
        const page = await browser!.newPage();
        try {
          await page.goto(`http://${HOST}:${ctx.srv.port}/`);
          await harness(page, 'open', ctx.url, []);
          assert.deepEqual(await next(page), { type: 'text', text: 'welcome from c1m' });
          ctx.opened[0].close(4001, 'server says bye: ✓');
          assert.deepEqual(await closeEvent(page), { wasClean: true, code: 4001, reason: 'server says bye: ✓' });
          await waitFor(() => ctx.closes.length === 1, 'the server to report the close');
          // The browser echoed our code (RFC 6455 5.5.1).
          assert.equal(ctx.closes[0].code, 4001);
        } finally {
          await page.close();
          await ctx.srv.reactor.close(1000);
        }
        assert.deepEqual(ctx.srv.errors.map(String), []);
      });
    }
  }
});

/**
 * A real browser over TLS, on every backend: headless Chromium (playwright-core) loads a page
 * over https from the c1m HTTP server listening with `tls`, and on the same port opens a
 * `wss://` WebSocket served by `createWebSocketHandler`: text (non-ASCII included) and binary
 * round trips, then a clean close. The test certificate is trusted the way one trusts a test
 * certificate without touching the machine's store: Chromium's
 * `--ignore-certificate-errors-spki-list` with the SHA-256 of its public key (SPKI). A server
 * with another certificate (signed by a CA nobody trusts) is refused, so the flag is what
 * makes the first one trusted, not a blanket `ignoreHTTPSErrors`.
 *
 * Chromium is /usr/bin/chromium (C1M_CHROMIUM overrides); missing, the suite is skipped,
 * unless C1M_REQUIRE_NATIVE=1 (CI), where that is a failure.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createHttpHandler, createReactor, createWebSocketHandler, type Reactor, type WebSocket } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { CHROMIUM, CHROMIUM_MISSING as MISSING, launchChromium } from '../helpers/browser.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';
import { testCerts, type KeyPair } from '../helpers/tls-certs.js';

const REQUIRED = process.env.C1M_REQUIRE_NATIVE === '1';
const certs = testCerts();

/** base64(SHA-256(SubjectPublicKeyInfo)), what --ignore-certificate-errors-spki-list takes. */
const spkiHash = (pem: string): string =>
  createHash('sha256').update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>c1m wss</title></head><body>
<script>
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
window.harness = {
  socket: null, inbox: [], closed: null,
  open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      this.socket = ws;
      ws.onmessage = (e) => this.inbox.push(typeof e.data === 'string' ? { type: 'text', text: e.data } : { type: 'binary', hex: hex(e.data) });
      ws.onerror = () => reject(new Error('WebSocket error before open'));
      ws.onclose = (e) => { this.closed = { wasClean: e.wasClean, code: e.code, reason: e.reason }; };
      ws.onopen = () => resolve(location.protocol);
    });
  },
  send(kind, arg) { this.socket.send(kind === 'text' ? arg : new Uint8Array(arg).buffer); },
  close(code, reason) { this.socket.close(code, reason); },
};
</script></body></html>`;

interface Site {
  reactor: Reactor;
  port: number;
  opened: WebSocket[];
  closes: { code: number; reason: string }[];
  errors: Error[];
}

/** The page and an echoing WebSocket on one TLS port. */
async function startSite(backend: (typeof backends)[number], pair: KeyPair): Promise<Site> {
  const site: Omit<Site, 'reactor' | 'port'> = { opened: [], closes: [], errors: [] };
  const ws = createWebSocketHandler({
    onOpen: (s) => void site.opened.push(s),
    onMessage: (s, data, isBinary) => void s.send(data, isBinary),
    onClose: (_s, code, reason) => void site.closes.push({ code, reason }),
  });
  const http = createHttpHandler({
    routes: {
      'GET /': (_req, res) => {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(PAGE);
      },
    },
    onUpgrade: ws.upgradeHook(),
  });
  const reactor = createReactor(http, { backend, onError: (e) => site.errors.push(e) });
  ws.onReactor?.(reactor);
  const { port } = await reactor.listen({ host: HOST, port: 0, tls: { cert: pair.cert, key: pair.key } });
  return { ...site, reactor, port };
}

const harness = (page: Page, fn: string, ...args: unknown[]): Promise<unknown> =>
  within(page.evaluate(([f, a]) => {
    const h = (window as unknown as { harness: Record<string, (...x: unknown[]) => unknown> }).harness;
    return h[f as string](...(a as unknown[]));
  }, [fn, args] as const), `harness.${fn}`);

async function next(page: Page): Promise<unknown> {
  await page.waitForFunction(() => (window as unknown as { harness: { inbox: unknown[] } }).harness.inbox.length > 0, undefined, { timeout: 30_000 });
  return page.evaluate(() => (window as unknown as { harness: { inbox: unknown[] } }).harness.inbox.shift());
}

if (MISSING && REQUIRED) {
  test('Chromium is installed', () => {
    throw new Error(`C1M_REQUIRE_NATIVE=1 but Chromium is missing at ${CHROMIUM} (install it, or set C1M_CHROMIUM)`);
  });
}

describe('wss:// with a real browser (headless Chromium, test certificate trusted by its SPKI hash)', { skip: MISSING ? `no Chromium at ${CHROMIUM}` : false }, () => {
  let browser: Browser | undefined;
  before(async () => {
    browser = await launchChromium(60_000, [`--ignore-certificate-errors-spki-list=${spkiHash(certs.server.cert)}`]);
  });
  after(async () => {
    await browser?.close();
  });

  for (const backend of backends) {
    test(`https page + wss:// WebSocket to c1m: text and binary round trips, clean close (${backend})`, GUARD, async () => {
      const site = await startSite(backend, certs.server);
      const page = await browser!.newPage();
      try {
        const res = await page.goto(`https://${HOST}:${site.port}/`);
        assert.equal(res?.status(), 200);
        assert.equal(await page.title(), 'c1m wss');
        assert.equal(await harness(page, 'open', `wss://${HOST}:${site.port}/socket`), 'https:');
        await waitFor(() => site.opened.length === 1, 'the server side opened');
        const tls = site.reactor.connections().map((c) => c.tls).find((t) => t !== undefined);
        assert.ok(tls, 'the server sees TLS facts on the connection');
        assert.match(tls.protocol, /^TLSv1\.[23]$/);

        const text = 'héllo over wss ✓ 😀 — 日本語';
        await harness(page, 'send', 'text', text);
        assert.deepEqual(await next(page), { type: 'text', text });
        const bytes = Array.from({ length: 256 }, (_, i) => 255 - i);
        await harness(page, 'send', 'bytes', bytes);
        assert.deepEqual(await next(page), { type: 'binary', hex: Buffer.from(bytes).toString('hex') });

        await harness(page, 'close', 1000, 'bye from chromium');
        await page.waitForFunction(() => (window as unknown as { harness: { closed: unknown } }).harness.closed !== null, undefined, { timeout: 30_000 });
        const closed = await page.evaluate(() => (window as unknown as { harness: { closed: unknown } }).harness.closed);
        assert.deepEqual(closed, { wasClean: true, code: 1000, reason: 'bye from chromium' });
        await waitFor(() => site.closes.length === 1, 'the server saw the close');
        assert.deepEqual(site.closes, [{ code: 1000, reason: 'bye from chromium' }]);
        assert.deepEqual(site.errors, []);
      } finally {
        await page.close();
        await site.reactor.close(1000);
      }
    });

    test(`a certificate whose key is not in the list is refused (${backend})`, GUARD, async () => {
      const site = await startSite(backend, certs.rogue);
      const page = await browser!.newPage();
      try {
        await assert.rejects(page.goto(`https://${HOST}:${site.port}/`), /ERR_CERT|net::/);
        assert.equal(site.opened.length, 0);
      } finally {
        await page.close();
        await site.reactor.close(1000);
      }
    });
  }
});

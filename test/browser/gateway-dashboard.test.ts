/**
 * The gateway's `/dashboard` in headless Chromium: the page loads with Chart.js (served from
 * the installed package), its numbers move while load runs (subscribers connect, messages
 * are published), its charts are drawn, and a screenshot is written to the test output
 * directory (C1M_TEST_OUTPUT, default build-test/test-output) for a human to look at.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { listen, type Server } from '../../src/index.js';
import { createGateway } from '../../src/apps/gateway/index.js';
import { CHROMIUM, CHROMIUM_MISSING, launchChromium } from '../helpers/browser.js';
import { gatewayClient, publishHttp, type GatewayClient } from '../helpers/gateway.js';
import { GUARD, HOST } from '../helpers/net.js';

const REQUIRED = process.env.C1M_REQUIRE_NATIVE === '1';
const OUTPUT = process.env.C1M_TEST_OUTPUT ?? fileURLToPath(new URL('../../test-output/', import.meta.url));

if (CHROMIUM_MISSING && REQUIRED) {
  test('Chromium is installed', () => {
    throw new Error(`C1M_REQUIRE_NATIVE=1 but Chromium is missing at ${CHROMIUM}`);
  });
}

describe('gateway dashboard in Chromium', { skip: CHROMIUM_MISSING ? `no Chromium at ${CHROMIUM}` : false }, () => {
  let browser: Browser | undefined;
  let server: Server;
  before(async () => {
    browser = await launchChromium();
    server = await listen(await createGateway({ noAuth: true, publishToken: 'pt' }), { port: 0, host: HOST });
  });
  after(async () => {
    await browser?.close();
    await server.close(1000);
  });

  test('the page loads, its numbers move under load, the charts are drawn; a screenshot is written', GUARD, async () => {
    const port = server.address.port;
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const clients: GatewayClient[] = [];
    try {
      const res = await page.goto(`http://${HOST}:${port}/dashboard`);
      assert.equal(res?.status(), 200);
      assert.equal(await page.title(), 'c1m gateway');
      assert.equal(await page.evaluate(() => typeof (window as unknown as { Chart?: unknown }).Chart), 'function', 'Chart.js loaded');
      const number = (id: string): Promise<string> => page.locator(`#n-${id}`).innerText();
      // The first reading shows the page's own connections (the page and its poll).
      await page.waitForFunction(() => document.getElementById('n-connections')!.textContent !== '–');
      for (let i = 0; i < 20; i++) clients.push(await gatewayClient(port, '?topics=load'));
      await page.waitForFunction(() => Number(document.getElementById('n-subscriptions')!.textContent) >= 20, undefined, { timeout: 30_000 });
      assert.ok(Number(await number('connections')) >= 20);
      // Publish until the page has shown a non-zero delivery rate (a rate needs two readings).
      let published = 0;
      const load = (async () => {
        while (!(await page.evaluate(() => Number(document.getElementById('n-deliveries')!.textContent) > 0))) {
          for (let k = 0; k < 20; k++) await publishHttp(port, 'load', `m${published++}`, { Authorization: 'Bearer pt' });
        }
      })();
      await load;
      assert.ok(Number(await number('messages')) > 0);
      assert.ok(Number(await number('memory')) > 0);
      // The charts have points.
      const points = await page.evaluate(() => {
        const charts = (window as unknown as { Chart: { instances: Record<string, { data: { datasets: { data: unknown[] }[] } }> } }).Chart.instances;
        return Object.values(charts).map((c) => c.data.datasets[0]!.data.length);
      });
      assert.equal(points.length, 4);
      assert.ok(points.every((n) => n > 0), `points per chart: ${points}`);
      mkdirSync(OUTPUT, { recursive: true });
      const file = join(OUTPUT, 'gateway-dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(statSync(file).size > 10_000, 'a screenshot with something in it');
    } finally {
      for (const c of clients) c.close();
      await page.close();
    }
  });
});

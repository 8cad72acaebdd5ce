#!/usr/bin/env node
// The JS side of one WebSocket upgrade, without sockets: the handler's onOpen, onData(the
// upgrade request) and onClose on fake connections (the engine's handle contract, no engine),
// warm, in rounds of 19,000 upgrades then 19,000 closes. What bench/upgrade-storm.mjs measures
// with the kernel and the engine around it; this isolates the handler's share (the figures in
// the commit messages of the 2026-12-05 upgrade work), and its heap growth per upgrade.
//
// usage: npm run build && node bench/upgrade-micro.mjs [--app gateway|httpws|ws] [-n 190000]
//          [--root DIR]
//   --app   gateway: `c1m serve gateway --no-auth` (the HTTP server, /ws?topics=a, a topic);
//           httpws: createHttpHandler({ onUpgrade: wsHandler.upgradeHook() }) with an echo;
//           ws: the WebSocket handler on its own port (the in-place head reader)
//   --root  a checkout with its dist/ built (default: this one): compare builds in turn
// Output: one JSON line: ns of CPU per upgrade (process.cpuUsage), and heap bytes per upgrade
// (heapUsed growth over 5,000 upgrades; run with --max-semi-space-size=256
// --min-semi-space-size=256 so that no scavenge falls inside; includes ~190 B of this harness).
// The box is shared: compare builds in one sitting, alternating.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const { values: v } = parseArgs({
  options: {
    app: { type: 'string', default: 'gateway' },
    n: { type: 'string', short: 'n', default: '190000' },
    root: { type: 'string', default: path.dirname(path.dirname(fileURLToPath(import.meta.url))) },
  },
  strict: true,
});
const N = Number(v.n);
if (!Number.isInteger(N) || N < 1) throw new Error(`-n must be a positive integer, got "${v.n}"`);
if (!['gateway', 'httpws', 'ws'].includes(v.app)) throw new Error(`--app must be gateway, httpws or ws, got "${v.app}"`);
const imp = (p) => import(pathToFileURL(path.join(path.resolve(v.root), 'dist', p)).href);
const { createGateway } = await imp('apps/gateway/index.js');
const { createHandler: wsEcho } = await imp('apps/ws-echo.js');
const { createHttpHandler } = await imp('protocols/http1/index.js');
const handler = v.app === 'gateway'
  ? await createGateway({ noAuth: true, pingInterval: 30_000 })
  : v.app === 'httpws' ? createHttpHandler({ onUpgrade: wsEcho({}).upgradeHook() }) : wsEcho({});

/** A connection as a handler sees it: every method the upgrade path calls, doing nothing. */
let nextId = 1;
class FakeConnection {
  constructor() {
    this.id = nextId++;
    this.tag = 0;
    this.context = undefined;
    this.open = true;
    this.written = 0;
  }
  write(b) { this.written += b.length; return true; }
  writev(list) { for (const b of list) this.write(b); return true; }
  writeWithHeader(_h, n, d) { this.written += n + d.length; return true; }
  setTimeout() {}
  setHeartbeat() {}
  pause() {}
  resume() {}
  close() { this.open = false; return true; }
  shutdown() { return true; }
  destroy() { this.open = false; }
  get bufferedAmount() { return 0; }
}

const target = v.app === 'gateway' ? '/ws?topics=a' : '/';
const requests = Array.from({ length: 1000 }, () => {
  const key = Buffer.from(Array.from({ length: 16 }, () => (Math.random() * 256) | 0)).toString('base64');
  return Buffer.from(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 'latin1');
});
const live = [];
function round(n) {
  for (let i = 0; i < n; i++) {
    const c = new FakeConnection();
    const req = requests[i % requests.length];
    handler.onOpen?.(c);
    const r = handler.onData(c, Buffer.from(req)); // a fresh copy: the engine's receive area
    if (r !== req.length || c.written < 129) throw new Error(`upgrade ${i}: onData returned ${r}, ${c.written} bytes written`);
    live.push(c);
  }
  for (const c of live) {
    c.open = false;
    handler.onClose?.(c, { kind: 'end' });
  }
  live.length = 0;
}

round(3300);
const h0 = process.memoryUsage().heapUsed;
round(5000);
const heapPerUpgrade = Math.round((process.memoryUsage().heapUsed - h0) / 5000);
const t0 = process.cpuUsage();
for (let done = 0; done < N; done += 19_000) round(Math.min(19_000, N - done));
const t = process.cpuUsage(t0);
process.stdout.write(`${JSON.stringify({ app: v.app, root: v.root, upgrades: N, cpu_ns_per_upgrade: Math.round(((t.user + t.system) * 1000) / N), heap_bytes_per_upgrade: heapPerUpgrade })}\n`);
process.exit(0);

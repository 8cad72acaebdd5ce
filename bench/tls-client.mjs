#!/usr/bin/env node
// The load generator of bench/tls.mjs: c1m's own native client (createReactor + connect, with or
// without TLS) in one process. Progress and phase lines on stdout as JSON, one per line.
//
//   node bench/tls-client.mjs --mode echo --port P [--host H] [--tls] --conns N --size S
//        --depth D --warmup SECS --duration SECS
//   node bench/tls-client.mjs --mode hold --port P [--host H] [--tls] --conns N [--inflight K]
//
// echo: N connections, each keeping D messages of S bytes in flight (a message is written
// again for every S bytes echoed back). Prints {"phase":"measure"} when the warm-up ends and
// {"phase":"done","messages":M,"seconds":T,...} at the end: M echoed messages in the window.
// hold: opens N connections, at most K handshakes at a time, prints {"phase":"held","conns":N}
// when all are open, then keeps them until SIGTERM. TLS: no certificate verification (the
// server's certificate is a throwaway made by tls.mjs).
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const { createReactor } = require(process.env.C1M_LIB ?? path.join(REPO, 'dist/index.js'));

const { values: v } = parseArgs({
  options: {
    mode: { type: 'string', default: 'echo' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    tls: { type: 'boolean', default: false },
    conns: { type: 'string', default: '100' },
    size: { type: 'string', default: '64' },
    depth: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '256' },
  },
  strict: true,
});
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const int = (name) => {
  const n = Number(v[name]);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`tls-client: --${name} must be a number\n`);
    process.exit(2);
  }
  return n;
};
const port = int('port');
const conns = int('conns');
const tls = v.tls ? { rejectUnauthorized: false, servername: 'localhost' } : undefined;
let failed = 0;
const firstError = [];

if (v.mode === 'echo') {
  const size = int('size'), depth = int('depth');
  const msg = Buffer.alloc(size, 0x61);
  const burst = Buffer.alloc(size * depth, 0x61);
  let received = 0; // bytes echoed, all connections
  const pending = new Map(); // conn.id -> bytes received not yet a whole message
  let open = 0;
  let ready;
  const allOpen = new Promise((r) => (ready = r));
  const reactor = createReactor({
    onOpen(c) {
      pending.set(c.id, 0);
      c.write(burst);
      if (++open === conns) ready();
    },
    onData(c, d) {
      received += d.length;
      let p = pending.get(c.id) + d.length;
      while (p >= size) {
        p -= size;
        c.write(msg);
      }
      pending.set(c.id, p);
    },
    onClose(c, r) {
      if (r.kind !== 'local' && r.kind !== 'shutdown') {
        failed++;
        if (firstError.length === 0) firstError.push(`${r.kind} ${r.code ?? ''} ${r.error?.message ?? ''}`);
        if (open < conns) ready(); // do not wait forever
      }
    },
  }, { backend: 'native', onError: () => {} });
  for (let i = 0; i < conns; i++) reactor.connect({ host: v.host, port, tls });
  await allOpen;
  out({ phase: 'open', conns: open, failed });
  await new Promise((r) => setTimeout(r, int('warmup') * 1000));
  const r0 = received, t0 = performance.now();
  out({ phase: 'measure' });
  await new Promise((r) => setTimeout(r, int('duration') * 1000));
  const r1 = received, t1 = performance.now();
  out({ phase: 'done', messages: Math.floor((r1 - r0) / size), bytes: r1 - r0, seconds: (t1 - t0) / 1000, conns: open, failed, firstError: firstError[0] });
  await reactor.close(2000);
  process.exit(0);
} else if (v.mode === 'hold') {
  const inflight = int('inflight');
  let started = 0, open = 0;
  let reactor;
  const next = () => {
    while (started < conns && started - open - failed < inflight) {
      started++;
      reactor.connect({ host: v.host, port, tls });
    }
    if (open + failed === conns) out({ phase: 'held', conns: open, failed, firstError: firstError[0] });
  };
  reactor = createReactor({
    onOpen() {
      open++;
      next();
    },
    onClose(c, r) {
      if (r.kind === 'local' || r.kind === 'shutdown') return;
      failed++;
      if (firstError.length === 0) firstError.push(`${r.kind} ${r.code ?? ''} ${r.error?.message ?? ''}`);
      next();
    },
  }, { backend: 'native', onError: () => {} });
  next();
  process.on('SIGTERM', () => {
    reactor.close(0).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  });
  setInterval(() => {}, 1 << 30);
} else {
  process.stderr.write(`tls-client: unknown --mode ${v.mode}\n`);
  process.exit(2);
}

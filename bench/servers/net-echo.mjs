#!/usr/bin/env node
// The node:net baseline: the plainest echo server Node offers, so that every c1m figure can be
// quoted against "what you get without c1m" measured in the same invocation.
//
//   node --expose-gc bench/servers/net-echo.mjs [--port 9000] [--host 127.0.0.1] [--mode echo|hold]
//
// Contract shared with the c1m serve CLI (bench/lib.mjs relies on it):
// - exactly one stdout line containing "listening" once the port accepts connections;
// - SIGTERM: close the listener and exit 0;
// - SIGUSR1: run a full GC when started with --expose-gc, then print one JSON line {"gc":...}
//   (installing the listener also stops Node from opening the inspector on SIGUSR1).
//
// Invariants: no per-connection bookkeeping beyond what node:net itself keeps (no Set of
// sockets), so the idle-memory figure is node:net's own cost. Backpressure: a socket that
// cannot flush stops reading until 'drain', as refserver does.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    host: { type: 'string', default: '127.0.0.1' },
    mode: { type: 'string', default: 'echo' },
    backlog: { type: 'string', default: '65535' },
  },
  strict: true,
});
if (values.mode !== 'echo' && values.mode !== 'hold') {
  process.stderr.write(`net-echo: --mode must be echo or hold, got "${values.mode}"\n`);
  process.exit(2);
}
const echo = values.mode === 'echo';

function onEchoData(chunk) {
  if (!this.write(chunk)) this.pause();
}
function onDrain() {
  this.resume();
}
function onError() {
  // ECONNRESET and friends: the load generator closes with RST; nothing to report.
}
function discard() {}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', onError);
  if (echo) {
    socket.on('data', onEchoData);
    socket.on('drain', onDrain);
  } else {
    // hold: read and discard, like `refserver -m hold`; a hold client never sends anything.
    socket.on('data', discard);
  }
});

server.on('error', (err) => {
  process.stderr.write(`net-echo: ${err.code ?? ''} ${err.message}\n`);
  process.exit(1);
});

server.listen({ port: Number(values.port), host: values.host, backlog: Number(values.backlog) }, () => {
  const a = server.address();
  process.stdout.write(`net-echo listening ${a.address}:${a.port} mode=${values.mode} pid=${process.pid}\n`);
});

process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
process.on('SIGINT', () => process.exit(0));

process.on('SIGUSR1', () => {
  const hasGc = typeof globalThis.gc === 'function';
  if (hasGc) globalThis.gc();
  const m = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ gc: hasGc, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`,
  );
});

#!/usr/bin/env node
// The `ws` baseline: the WebSocket server most Node applications use, so that every c1m
// WebSocket figure can be quoted against "what you get without c1m" in the same invocation.
//
//   node --expose-gc bench/servers/ws-echo.mjs [--port 9000] [--host 127.0.0.1]
//
// Every message comes back as it came (binary as binary, text as text). An idle client
// (loadgen -m ws-hold) never sends, so the same server serves the idle-memory benchmark.
//
// Contract shared with net-echo.mjs and the c1m serve CLI (bench/lib.mjs relies on it):
// - exactly one stdout line containing "listening" once the port accepts connections;
// - SIGTERM: close the listener and exit 0;
// - SIGUSR1: run a full GC when started with --expose-gc, then print one JSON line {"gc":...}
//   (installing the listener also stops Node from opening the inspector on SIGUSR1).
//
// Options, and why: `perMessageDeflate: false` (c1m and refserver do not compress; ws's default
// would negotiate it with clients that offer it), `clientTracking: false` (no Set of sockets: the
// idle-memory figure is ws's own cost per connection, as net-echo keeps none for node:net).
// Backpressure: none beyond ws's own buffering; loadgen keeps at most -D messages in flight per
// connection, so what a connection can have queued is bounded by the client.
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    host: { type: 'string', default: '127.0.0.1' },
    backlog: { type: 'string', default: '65535' },
  },
  strict: true,
});

function onMessage(data, isBinary) {
  this.send(data, { binary: isBinary });
}
function onError() {
  // Protocol errors close the connection (ws sends the close frame); nothing to report.
}

const wss = new WebSocketServer({
  host: values.host,
  port: Number(values.port),
  backlog: Number(values.backlog),
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('error', onError);
  ws.on('message', onMessage);
});

wss.on('error', (err) => {
  process.stderr.write(`ws-echo: ${err.code ?? ''} ${err.message}\n`);
  process.exit(1);
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`ws-echo listening ${a.address}:${a.port} pid=${process.pid}\n`);
});

process.on('SIGTERM', () => {
  wss.close();
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

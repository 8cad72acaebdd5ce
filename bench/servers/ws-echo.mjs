#!/usr/bin/env node
// The `ws` baseline: the WebSocket server most Node applications use, so that every c1m
// WebSocket figure can be quoted against "what you get without c1m" in the same invocation.
//
//   node --expose-gc bench/servers/ws-echo.mjs [--port 9000] [--host 127.0.0.1]
//
// Every message comes back as it came (binary as binary, text as text). An idle client
// (loadgen -m ws-hold) never sends, so the same server serves the idle-memory benchmark.
//
// Keeps the contract of ./contract.mjs (bench/lib.mjs relies on it).
//
// Options, and why: `perMessageDeflate: false` (c1m and refserver do not compress; ws's default
// would negotiate it with clients that offer it), `clientTracking: false` (no Set of sockets: the
// idle-memory figure is ws's own cost per connection, as net-echo keeps none for node:net).
// Backpressure: none beyond ws's own buffering; loadgen keeps at most -D messages in flight per
// connection, so what a connection can have queued is bounded by the client.
import { keepContract, serverArgs } from './contract.mjs';
import { WebSocketServer } from 'ws';

const values = serverArgs();

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

keepContract('ws-echo', wss);

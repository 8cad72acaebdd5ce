#!/usr/bin/env node
// The node:net baseline: the plainest echo server Node offers, so that every c1m figure can be
// quoted against "what you get without c1m" measured in the same invocation.
//
//   node --expose-gc bench/servers/net-echo.mjs [--port 9000] [--host 127.0.0.1] [--mode echo|hold]
//
// Keeps the contract of ./contract.mjs (bench/lib.mjs relies on it).
//
// Invariants: no per-connection bookkeeping beyond what node:net itself keeps (no Set of
// sockets), so the idle-memory figure is node:net's own cost. Backpressure: a socket that
// cannot flush stops reading until 'drain', as refserver does.
import { keepContract, serverArgs } from './contract.mjs';
import net from 'node:net';

const values = serverArgs({ mode: { type: 'string', default: 'echo' } });
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

keepContract('net-echo', server, ` mode=${values.mode}`);
server.listen({ port: Number(values.port), host: values.host, backlog: Number(values.backlog) });

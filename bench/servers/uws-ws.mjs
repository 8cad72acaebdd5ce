#!/usr/bin/env node
// The uWebSockets.js WebSocket baseline for bench/upgrade-storm.mjs: `App().ws('/*')`, every
// message echoed as it came (an idle `loadgen -m ws-hold` client never sends).
//
//   node bench/servers/uws-ws.mjs [--port 9000] [--host 127.0.0.1] [--subscribe]
//
// --subscribe: what the c1m gateway does per connection, in uWebSockets.js's own API: the
// upgrade reads the query's `topics` (comma-separated, as /ws?topics=a,b), `open` sends the
// gateway's welcome, subscribes to each topic and sends an ack naming them (the same two text
// messages an open c1m gateway sends). Without it nothing is read or sent beyond the 101.
//
// The contract of ./contract.mjs: one "listening" line, exit 0 on SIGTERM, SIGUSR1 -> GC + a
// {"gc":...} line. Compression off (c1m, ws and refserver do not compress either).
import { createRequire } from 'node:module';
import { reportMemoryOnSigusr1, serverArgs } from './contract.mjs';

const values = serverArgs({ subscribe: { type: 'boolean', default: false } });
const require = createRequire(import.meta.url);
let uws;
try {
  uws = require('uwebsockets');
} catch (err) {
  process.stderr.write(`uws-ws: uwebsockets is not installed (${err.message})\n`);
  process.exit(3);
}

const WELCOME = '{"op":"welcome","user":""}';
const EPOCH = Date.now().toString(36);
const behavior = {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  message(ws, message, isBinary) {
    ws.send(message, isBinary);
  },
};
if (values.subscribe) {
  behavior.upgrade = (res, req, context) => {
    const topics = req.getQuery('topics') ?? '';
    res.upgrade(
      { topics },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  };
  behavior.open = (ws) => {
    const { topics } = ws.getUserData();
    ws.send(WELCOME, false);
    if (topics === '') return;
    let ack = '{"op":"ack","id":0,"topics":{';
    let first = true;
    for (const t of topics.split(',')) {
      ws.subscribe(t);
      ack += `${first ? '' : ','}${JSON.stringify(t)}:{"seq":0,"epoch":"${EPOCH}"}`;
      first = false;
    }
    ws.send(`${ack}}}`, false);
  };
}

const app = uws.App().ws('/*', behavior);
app.listen(values.host, Number(values.port), (token) => {
  if (!token) {
    process.stderr.write(`uws-ws: cannot listen on ${values.host}:${values.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`uws-ws listening ${values.host}:${values.port}${values.subscribe ? ' subscribe' : ''} pid=${process.pid}\n`);
  process.on('SIGTERM', () => {
    uws.us_listen_socket_close(token);
    process.exit(0);
  });
});
process.on('SIGINT', () => process.exit(0));
reportMemoryOnSigusr1();

#!/usr/bin/env node
// The node:tls / node:https baselines for bench/tls.mjs.
//
//   node --expose-gc bench/servers/tls-node.mjs --cert FILE --key FILE --mode echo|hold|https
//        [--port 9000] [--host 127.0.0.1]
//
// echo: a node:tls server echoing every chunk; hold: a node:tls server that accepts and keeps
// connections (idle memory); https: node:https with the 115-byte hello world of
// bench/servers/http-hello.mjs (ALPN http/1.1). Session tickets are on (node's default), so
// clients that offer a ticket resume. Keeps the contract of ./contract.mjs.
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { keepContract, serverArgs } from './contract.mjs';

const values = serverArgs({ cert: { type: 'string' }, key: { type: 'string' }, mode: { type: 'string', default: 'echo' } });
if (!values.cert || !values.key) {
  process.stderr.write('tls-node: --cert and --key are required\n');
  process.exit(2);
}
const opts = { cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) };
const HELLO = Buffer.from('Hello, World!');
let server;
switch (values.mode) {
  case 'echo':
    server = tls.createServer(opts, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    break;
  case 'hold':
    server = tls.createServer(opts, (s) => s.on('error', () => {}));
    break;
  case 'https':
    server = https.createServer({ ...opts, ALPNProtocols: ['http/1.1'], keepAliveTimeout: 0 }, (req, res) => {
      res.removeHeader('Connection');
      if (req.method === 'GET' && req.url === '/') {
        res.setHeader('Content-Type', 'text/plain');
        res.end(HELLO);
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    break;
  default:
    process.stderr.write(`tls-node: unknown --mode ${values.mode}\n`);
    process.exit(2);
}
server.on('tlsClientError', () => {});
keepContract(`node-tls-${values.mode}`, server);
server.listen({ port: Number(values.port), host: values.host, backlog: Number(values.backlog) });

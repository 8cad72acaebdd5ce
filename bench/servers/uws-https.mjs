#!/usr/bin/env node
// The uWebSockets.js TLS baseline for bench/tls.mjs: SSLApp answering `GET /` with the same
// hello world as c1m serve http.
//
//   node --expose-gc bench/servers/uws-https.mjs --cert FILE --key FILE [--port 9000] [--host 127.0.0.1]
//
// The contract of ./contract.mjs: one "listening" line, exit 0 on SIGTERM, SIGUSR1 -> GC + a {"gc":...} line.
import { createRequire } from 'node:module';
import { reportMemoryOnSigusr1, serverArgs } from './contract.mjs';

const values = serverArgs({ cert: { type: 'string' }, key: { type: 'string' } });
const require = createRequire(import.meta.url);
let uws;
try {
  uws = require('uwebsockets');
} catch (err) {
  process.stderr.write(`uws-https: uwebsockets is not installed (${err.message})\n`);
  process.exit(3);
}
const app = uws.SSLApp({ cert_file_name: values.cert, key_file_name: values.key });
app.get('/', (res) => {
  res.cork(() => res.writeHeader('Content-Type', 'text/plain').end('Hello, World!'));
});
app.any('/*', (res) => res.writeStatus('404 Not Found').end());
app.listen(values.host, Number(values.port), (token) => {
  if (!token) {
    process.stderr.write(`uws-https: cannot listen on ${values.host}:${values.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`uws-https listening ${values.host}:${values.port} pid=${process.pid}\n`);
  process.on('SIGTERM', () => {
    uws.us_listen_socket_close(token);
    process.exit(0);
  });
});
process.on('SIGINT', () => process.exit(0));
reportMemoryOnSigusr1();

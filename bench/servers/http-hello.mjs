#!/usr/bin/env node
// The node:http baseline for bench/http.mjs: the hello world of `c1m serve http`
// (src/apps/http-hello.ts) written with node:http, so that every c1m HTTP figure can be quoted
// against "what you get without c1m" in the same invocation.
//
//   node --expose-gc bench/servers/http-hello.mjs [--port 9000] [--host 127.0.0.1]
//
// Same bytes on the wire as c1m: `GET /` answers 200 with Date, Content-Type: text/plain and
// Content-Length: 13, body "Hello, World!" (115 bytes); anything else 404. node:http would add
// "Connection: keep-alive" and "Keep-Alive: timeout=5" to every HTTP/1.1 response; c1m sends
// neither (keep-alive is HTTP/1.1's default), so they are dropped here: the connection stays
// open all the same. http.mjs records the bytes per response of every target to show it.
//
// Keeps the contract of ./contract.mjs (bench/lib.mjs relies on it).
import { keepContract, serverArgs } from './contract.mjs';
import http from 'node:http';

const values = serverArgs();

const HELLO = Buffer.from('Hello, World!');

// keepAliveTimeout 0: no idle timeout on a kept-alive connection, and no Keep-Alive header.
const server = http.createServer({ keepAliveTimeout: 0 }, (req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    res.setHeader('Content-Type', 'text/plain');
    res.removeHeader('Connection'); // keeps the connection open, omits the header
    res.end(HELLO);
    return;
  }
  res.statusCode = 404;
  res.removeHeader('Connection');
  res.end();
});

keepContract('http-hello', server);
server.listen({ port: Number(values.port), host: values.host, backlog: Number(values.backlog) });

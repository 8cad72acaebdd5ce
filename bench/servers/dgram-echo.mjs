#!/usr/bin/env node
// The node:dgram baseline: the plainest UDP echo server Node offers, so that every c1m UDP figure
// can be quoted against "what you get without c1m" measured in the same invocation.
//
//   node bench/servers/dgram-echo.mjs [--port 9100] [--host 127.0.0.1]
//
// Keeps the contract of ./contract.mjs (bench/udp.mjs relies on its "listening" line and SIGTERM).
// One JS call and one Buffer per datagram, one send system call per echo: dgram's own cost.
import { keepContract, serverArgs } from './contract.mjs';
import dgram from 'node:dgram';

const values = serverArgs();
const sock = dgram.createSocket({ type: values.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
keepContract('dgram-echo', sock);
sock.bind(Number(values.port), values.host);

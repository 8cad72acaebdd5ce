#!/usr/bin/env node
// WebSocket echo throughput, latency and server CPU per message: `node bench/echo.mjs --mode ws`
// under its own name. loadgen -m ws-echo (masked binary frames after an upgrade) against
// refserver -m ws-echo, c1m `serve ws-echo` on both backends and the `ws` package
// (bench/servers/ws-echo.mjs); ratios vs refserver and vs ws from the same invocation.
//
//   node bench/ws-echo.mjs [--targets refserver,c1m-native,c1m-portable,ws] [--reps 2]
//                          [--duration 10] [--warmup 1] [--workloads ...] [--out FILE] ...
//
// Every other option is echo.mjs's (see bench/README.md).
if (process.argv.slice(2).some((a) => a === '--mode' || a.startsWith('--mode='))) {
  process.stderr.write('ws-echo.mjs: --mode is fixed to ws here (use bench/echo.mjs for tcp)\n');
  process.exit(1);
}
process.argv.splice(2, 0, '--mode', 'ws');
await import('./echo.mjs');

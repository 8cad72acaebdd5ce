// The contract every baseline server in bench/servers keeps with bench/lib.mjs (and that
// `c1m serve` keeps too):
// - exactly one stdout line containing "listening" once the port accepts connections;
// - SIGTERM: close the listener and exit 0;
// - SIGUSR1: run a full GC when started with --expose-gc, then print one JSON line {"gc":...}
//   with the process's memory (installing the listener also stops Node from opening the
//   inspector on SIGUSR1).
import { parseArgs } from 'node:util';

/** `--port`, `--host`, `--backlog` and any `extra` parseArgs options. */
export function serverArgs(extra = {}) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9000' },
      host: { type: 'string', default: '127.0.0.1' },
      backlog: { type: 'string', default: '65535' },
      ...extra,
    },
    strict: true,
  });
  return values;
}

/**
 * Wire `server` (anything with `on('error')`, `on('listening')`, `address()` and `close()`)
 * to the contract. `label` names it in its lines; `detail` is appended to the listening line.
 */
export function keepContract(label, server, detail = '') {
  server.on('error', (err) => {
    process.stderr.write(`${label}: ${err.code ?? ''} ${err.message}\n`);
    process.exit(1);
  });
  server.on('listening', () => {
    const a = server.address();
    process.stdout.write(`${label} listening ${a.address}:${a.port}${detail} pid=${process.pid}\n`);
  });
  process.on('SIGTERM', () => {
    server.close();
    process.exit(0);
  });
  process.on('SIGINT', () => process.exit(0));
  reportMemoryOnSigusr1();
}

/** SIGUSR1: a memory-reducing GC when exposed (as c1m serve does: freed pages handed back at
 * once), then one JSON line of process.memoryUsage() on stdout. */
export function reportMemoryOnSigusr1() {
  process.on('SIGUSR1', () => {
    const hasGc = typeof globalThis.gc === 'function';
    if (hasGc) globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const m = process.memoryUsage();
    process.stdout.write(
      `${JSON.stringify({ gc: hasGc, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`,
    );
  });
}

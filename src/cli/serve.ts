/**
 * `c1m serve <app>`: run a built-in server until SIGTERM/SIGINT, then shut down gracefully.
 */
import { parseArgs } from 'node:util';
import { serve, defaultBackend, nofileLimit, type ServeHandle } from '../index.js';

const APPS: Record<string, string> = {
  echo: new URL('../apps/echo.js', import.meta.url).href,
  'ws-echo': new URL('../apps/ws-echo.js', import.meta.url).href,
  http: new URL('../apps/http-hello.js', import.meta.url).href,
  broadcast: new URL('../apps/broadcast.js', import.meta.url).href,
  'udp-echo': new URL('../apps/udp-echo.js', import.meta.url).href,
};
/** Apps that serve UDP (their module gives a UdpHandler). */
const UDP_APPS = new Set(['udp-echo']);

export const SERVE_USAGE = `usage: c1m serve <${Object.keys(APPS).join('|')}> --port P [--host 127.0.0.1]
         [--backend auto|native|portable] [--threads N | --processes N]
         [--balance round-robin|least-connections|hash] [--idle-timeout MS] [--grace MS]`;

/** Run `c1m serve`; resolves with the exit code once the server has shut down. */
export async function serveMain(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string', default: '0.0.0.0' },
        backend: { type: 'string', default: 'auto' },
        threads: { type: 'string' },
        processes: { type: 'string' },
        balance: { type: 'string', default: 'round-robin' },
        'idle-timeout': { type: 'string', default: '0' },
        grace: { type: 'string', default: '5000' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n${SERVE_USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const app = positionals[0];
  const int = (s: string | undefined): number | undefined => (s === undefined ? undefined : /^\d+$/.test(s) ? Number(s) : NaN);
  const port = int(v.port);
  if (!app || !APPS[app] || port === undefined || Number.isNaN(port)) {
    err.write(`c1m serve: ${!app || !APPS[app] ? `unknown app "${app ?? ''}"` : 'a numeric --port is required'}\n${SERVE_USAGE}\n`);
    return 2;
  }
  const backend = v.backend as 'auto' | 'native' | 'portable';
  let handle: ServeHandle;
  try {
    handle = await serve({
      handler: APPS[app]!,
      port,
      host: v.host!,
      backend,
      threads: int(v.threads),
      processes: int(v.processes),
      balance: v.balance as 'round-robin',
      idleTimeout: int(v['idle-timeout']),
      // socket buffers as udpref's (4 MiB, doubled by the kernel): 64 flows x 16 in flight overflow the default
      ...(UDP_APPS.has(app) ? { udp: { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 } } : {}),
    });
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n`);
    return 1;
  }
  const used = backend === 'auto' ? defaultBackend() : backend;
  const limit = nofileLimit();
  const perProcess = Number.isFinite(limit.connections) ? `, up to ~${limit.connections} connections per process (RLIMIT_NOFILE ${limit.soft})` : '';
  out.write(`c1m: ${app} listening on ${handle.address.host}:${handle.address.port} (backend ${used}, mode ${handle.mode}, pid ${process.pid}${perProcess})\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      err.write(`c1m: ${sig}: shutting down gracefully\n`);
      handle.close(int(v.grace)).then(() => resolve(0), (e: Error) => {
        err.write(`c1m: shutdown failed: ${e.message}\n`);
        resolve(1);
      });
    };
    // For benchmarks: SIGUSR2 prints the reactor's counters as one JSON line; SIGUSR1 runs a
    // full GC first when node was started with --expose-gc (idle-memory measurements).
    process.on('SIGUSR2', () => out.write(`${JSON.stringify(handle.stats() ?? {})}\n`));
    process.on('SIGUSR1', () => {
      const gc = (globalThis as { gc?: (o?: object) => void }).gc;
      // Memory-reducing: V8 hands freed pages back at once instead of over the next seconds.
      gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      const m = process.memoryUsage();
      out.write(`${JSON.stringify({ gc: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
    });
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

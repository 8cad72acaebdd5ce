/**
 * `c1m serve <app>`: run a built-in server until SIGTERM/SIGINT, then shut down gracefully.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serve, defaultBackend, nofileLimit, type ServeHandle } from '../index.js';

const APPS: Record<string, string> = {
  echo: new URL('../apps/echo.js', import.meta.url).href,
  'ws-echo': new URL('../apps/ws-echo.js', import.meta.url).href,
  http: new URL('../apps/http-hello.js', import.meta.url).href,
  broadcast: new URL('../apps/broadcast.js', import.meta.url).href,
};

export const SERVE_USAGE = `usage: c1m serve <${Object.keys(APPS).join('|')}> --port P [--host 127.0.0.1]
         [--backend auto|native|portable] [--threads N | --processes N]
         [--balance round-robin|least-connections|hash] [--idle-timeout MS] [--grace MS]
         [--tls-cert FILE --tls-key FILE]  (PEM; single-reactor mode)`;

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
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
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
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) {
    err.write(`c1m serve: --tls-cert and --tls-key go together\n${SERVE_USAGE}\n`);
    return 2;
  }
  let handle: ServeHandle;
  try {
    const tls = v['tls-cert'] === undefined ? undefined : {
      cert: readFileSync(v['tls-cert']), key: readFileSync(v['tls-key']!), ...(app === 'http' ? { alpn: ['http/1.1'] } : {}),
    };
    handle = await serve({
      handler: APPS[app]!,
      port,
      host: v.host!,
      backend,
      threads: int(v.threads),
      processes: int(v.processes),
      balance: v.balance as 'round-robin',
      idleTimeout: int(v['idle-timeout']),
      ...(tls ? { tls } : {}),
    });
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n`);
    return 1;
  }
  const used = backend === 'auto' ? defaultBackend() : backend;
  const limit = nofileLimit();
  const perProcess = Number.isFinite(limit.connections) ? `, up to ~${limit.connections} connections per process (RLIMIT_NOFILE ${limit.soft})` : '';
  out.write(`c1m: ${app} listening on ${v['tls-cert'] ? 'TLS ' : ''}${handle.address.host}:${handle.address.port} (backend ${used}, mode ${handle.mode}, pid ${process.pid}${perProcess})\n`);
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

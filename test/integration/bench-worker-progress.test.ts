/**
 * A `c1m bench` worker (bench-worker.ts), forked as the parent forks it, against a node:net
 * echo server:
 * - its progress reports: with latency asked for (the default, `c1m bench`'s per-second line)
 *   they carry the interval's histogram; with `progressLatency: false` (`c1m bench million`,
 *   which reads latencies from its snapshots) they carry none, while the counters still move;
 * - started with `--expose-gc` (`c1m bench million`'s clients), it runs a full collection when
 *   its connect phase ends, and none of its own before.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { workerConfigs } from '../../src/cli/bench-layout.js';
import type { ParentMessage, WorkerMessage } from '../../src/cli/bench-ipc.js';
import { nativeAvailable } from '../helpers/backends.js';

const WORKER = fileURLToPath(new URL('../../../dist/cli/bench-worker.js', import.meta.url));

/**
 * Fork one worker holding 20 connections of `scenario`, drive it through ready -> go (then
 * `onGo`) -> connected, then hand over to `connected` (which resolves with the result); killed
 * after. `onMessage` sees every message (and may resolve); the worker's stdout goes to
 * `onStdout` when given.
 */
async function driveWorker<T>(port: number, opts: {
  scenario: string; progressLatency?: boolean; connectPollMs?: number; execArgv?: string[];
  onMessage?: (m: WorkerMessage, resolve: (v: T) => void) => void; onStdout?: (text: string) => void;
  onGo?: (send: (m: ParentMessage) => void) => void;
  connected: (send: (m: ParentMessage) => void, resolve: (v: T) => void) => void;
}): Promise<T> {
  const [config] = workerConfigs({ scenario: opts.scenario, port, concurrency: 20, retries: 0, size: 16, depth: 1, rate: 0, verify: false, path: '/', deflate: false, tls: null, progressLatency: opts.progressLatency, connectPollMs: opts.connectPollMs },
    '127.0.0.1', { perProcess: [20], sources: ['127.0.0.1'] });
  const child = fork(WORKER, [], { stdio: ['ignore', opts.onStdout ? 'pipe' : 'inherit', 'inherit', 'ipc'], execArgv: opts.execArgv ?? [] });
  if (opts.onStdout) child.stdout!.on('data', (b: Buffer) => opts.onStdout!(b.toString()));
  const send = (m: ParentMessage): void => void child.send(m);
  try {
    return await new Promise<T>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`worker exited (${code})`)));
      child.on('message', (m: WorkerMessage) => {
        opts.onMessage?.(m, resolve);
        if (m.type === 'ready') {
          send({ type: 'go' });
          opts.onGo?.(send);
        } else if (m.type === 'connected') opts.connected(send, resolve);
        else if (m.type === 'fatal') reject(new Error(m.message));
      });
      send({ type: 'config', config: config! });
    });
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
  }
}

/** Progress messages of one worker echoing on 20 connections for ~1.2 s. */
async function progressOf(port: number, progressLatency: boolean | undefined): Promise<Extract<WorkerMessage, { type: 'progress' }>[]> {
  const out: Extract<WorkerMessage, { type: 'progress' }>[] = [];
  await driveWorker<void>(port, {
    scenario: 'echo', progressLatency,
    onMessage: (m) => void (m.type === 'progress' && out.push(m)),
    connected(send, resolve) {
      send({ type: 'traffic' });
      send({ type: 'measure' });
      setTimeout(resolve, 1200);
    },
  });
  return out;
}

/** The worker's stdout (V8's --trace-gc lines) before and after `end-connect`. */
async function gcAroundEndConnect(port: number): Promise<{ before: string; after: string }> {
  let out = '';
  return driveWorker(port, {
    scenario: 'hold', execArgv: ['--expose-gc', '--trace-gc'],
    onStdout: (text) => (out += text),
    connected(send, resolve) {
      setTimeout(() => {
        const before = out;
        send({ type: 'end-connect' });
        setTimeout(() => resolve({ before, after: out.slice(before.length) }), 500);
      }, 200);
    },
  });
}

describe('bench worker progress', { skip: !nativeAvailable && 'needs the native backend' }, () => {
  let server: Server;
  let port = 0;
  test('setup: an echo server', async () => {
    // The worker is killed at the end of each case: its connections reset.
    server = createServer((s) => void s.on('error', () => {}).pipe(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  test('by default each report with messages carries their latency histogram', async () => {
    const reports = await progressOf(port, undefined);
    const moving = reports.filter((m, i) => i > 0 && m.counters.msgsTotal > reports[i - 1]!.counters.msgsTotal);
    assert.ok(moving.length >= 2, `reports with new messages: ${moving.length}`);
    for (const m of moving) assert.equal(typeof m.hist, 'string');
  });

  test('progressLatency: false sends counters only', async () => {
    const reports = await progressOf(port, false);
    assert.ok(reports.length >= 3, `reports: ${reports.length}`);
    assert.ok(reports.at(-1)!.counters.msgsTotal > 0, 'messages were echoed');
    for (const m of reports) assert.equal(m.hist, null);
  });

  test('with --expose-gc, one full collection when the connect phase ends', async () => {
    const { before, after } = await gcAroundEndConnect(port);
    const forced = /Mark-Compact.*testing/;
    assert.doesNotMatch(before, forced, before);
    assert.match(after, forced, after);
  });

  test('connectPollMs: the connect phase polls from a timer (at 60 s nothing completes before the phase ends)', async () => {
    let accepted = 0;
    const srv = createServer((sock) => {
      accepted++;
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    type Result = Extract<WorkerMessage, { type: 'result' }>['result'];
    try {
      const result = await driveWorker<Result | 'connected'>((srv.address() as { port: number }).port, {
        scenario: 'hold', connectPollMs: 60_000,
        // The kernel completes every handshake; the worker, polling once a minute, has not
        // looked yet when its phase ends.
        onGo(send) {
          const wait = setInterval(() => {
            if (accepted < 20) return;
            clearInterval(wait);
            send({ type: 'end-connect' });
            send({ type: 'stop' });
          }, 10);
        },
        onMessage: (m, resolve) => void (m.type === 'result' && resolve(m.result)),
        connected: (_send, resolve) => resolve('connected'),
      });
      assert.notEqual(result, 'connected', 'the connects completed: the worker did not poll from a timer');
      assert.equal((result as Result).started, 20);
      assert.equal((result as Result).connected, 0, 'no connect seen before the phase ended');
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('teardown', async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
});

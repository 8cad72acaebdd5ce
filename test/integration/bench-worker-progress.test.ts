/**
 * A `c1m bench` worker's progress reports (bench-worker.ts): with latency asked for (the
 * default, `c1m bench`'s per-second line) they carry the interval's histogram; with
 * `progressLatency: false` (`c1m bench million`, which reads latencies from its snapshots)
 * they carry none, while the counters still move. The worker is forked as the parent forks it,
 * against a node:net echo server.
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

/** Progress messages of one worker echoing on 20 connections for ~1.2 s. */
async function progressOf(port: number, progressLatency: boolean | undefined): Promise<Extract<WorkerMessage, { type: 'progress' }>[]> {
  const [config] = workerConfigs({ scenario: 'echo', port, concurrency: 20, retries: 0, size: 16, depth: 1, rate: 0, verify: false, path: '/', deflate: false, tls: null, progressLatency },
    '127.0.0.1', { perProcess: [20], sources: ['127.0.0.1'] });
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const out: Extract<WorkerMessage, { type: 'progress' }>[] = [];
  const send = (m: ParentMessage): void => void child.send(m);
  try {
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`worker exited (${code})`)));
      child.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') send({ type: 'go' });
        else if (m.type === 'connected') {
          send({ type: 'traffic' });
          send({ type: 'measure' });
          setTimeout(resolve, 1200);
        } else if (m.type === 'progress') out.push(m);
        else if (m.type === 'fatal') reject(new Error(m.message));
      });
      send({ type: 'config', config: config! });
    });
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
  }
  return out;
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

  test('teardown', async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
});

/**
 * SCHED_BATCH (`setBatchScheduling`, `serve({ batchScheduling })`, `c1m serve
 * --batch-scheduling`): every thread of the process is switched, and threads and processes
 * started afterwards inherit it: worker threads, prefork workers, a worker restarted after a
 * crash. The policy is process-wide, so each case runs in a process of its own and reads the
 * kernel's view (/proc/PID/task/TID/stat); the test runner's own policy is never changed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
// Spawned by path: these type-only imports make tsc emit them into build-test.
import type {} from '../../src/cli/run.js';
import type {} from '../fixtures/greet-echo.js';
import type {} from '../fixtures/sched-probe.js';
import { serve, setBatchScheduling } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, waitFor, within } from '../helpers/net.js';
import { childrenOf, SCHED_BATCH, SCHED_OTHER, serveCli as serveCliOf, threadPolicies } from '../helpers/proc.js';

const runJs = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));
const probe = fileURLToPath(new URL('../fixtures/sched-probe.js', import.meta.url));
const greetEcho = fileURLToPath(new URL('../fixtures/greet-echo.js', import.meta.url));
const SKIP = { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' };

const serveCli = (args: string[]): ReturnType<typeof serveCliOf> => serveCliOf(runJs, greetEcho, args);

describe('batch scheduling', () => {
  test('setBatchScheduling: every thread switches; a worker thread and a child process started afterwards inherit it; false switches back', SKIP, () => {
    const r = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const p = JSON.parse(r.stdout) as { before: number[]; switched: number; after: number[]; withWorker: number[]; child: number; switchedBack: number; afterOff: number[] };
    assert.ok(p.before.length > 1 && p.before.every((x) => x === SCHED_OTHER), `before: ${p.before}`);
    assert.equal(p.switched, p.after.length, 'one per thread');
    assert.ok(p.after.every((x) => x === SCHED_BATCH), `after: ${p.after}`);
    assert.ok(p.withWorker.length > p.after.length && p.withWorker.every((x) => x === SCHED_BATCH), `with a worker thread: ${p.withWorker}`);
    assert.equal(p.child, SCHED_BATCH, 'a child process');
    assert.ok(p.switchedBack > 0 && p.afterOff.every((x) => x === SCHED_OTHER), `after false: ${p.afterOff}`);
  });

  test('bad values: ERR_C1M_INVALID_OPTION, nothing changed', SKIP, async () => {
    assert.throws(() => setBatchScheduling(1 as unknown as boolean), { code: 'ERR_C1M_INVALID_OPTION' });
    await assert.rejects(serve({ handler: greetEcho, port: 0, batchScheduling: 'yes' as unknown as boolean }), { code: 'ERR_C1M_INVALID_OPTION', message: /batchScheduling/ });
    assert.ok(threadPolicies(process.pid).every((x) => x === SCHED_OTHER), 'the test runner is untouched');
  });

  test('c1m serve --processes 2 --batch-scheduling: the supervisor and every worker, a restarted one too', SKIP, async () => {
    const s = serveCli(['--processes', '2', '--batch-scheduling']);
    try {
      await waitFor(() => /listening on/.test(s.out()), 'the listening line', 60_000);
      const workers = childrenOf(s.child.pid!);
      assert.equal(workers.length, 2, s.out());
      for (const pid of [s.child.pid!, ...workers]) {
        const t = threadPolicies(pid);
        assert.ok(t.length > 1 && t.every((x) => x === SCHED_BATCH), `pid ${pid}: ${t}`);
      }
      process.kill(workers[0]!, 'SIGKILL');
      let next: number | undefined;
      await waitFor(() => (next = childrenOf(s.child.pid!).find((p) => !workers.includes(p))) !== undefined, 'a replacement worker', 30_000);
      await waitFor(() => threadPolicies(next!).length > 1, 'its threads', 10_000);
      const t = threadPolicies(next!);
      assert.ok(t.every((x) => x === SCHED_BATCH), `the replacement ${next}: ${t}`);
    } finally {
      s.child.kill('SIGKILL');
      for (const p of childrenOf(s.child.pid!)) process.kill(p, 'SIGKILL');
    }
  });

  for (const [mode, batch] of [['--threads', true], ['--threads', false], ['--processes', false]] as const) {
    test(`c1m serve ${mode} 2${batch ? ' --batch-scheduling' : ''}: every thread ${batch ? 'SCHED_BATCH' : 'SCHED_OTHER'}`, SKIP, async () => {
      const s = serveCli([mode, '2', ...(batch ? ['--batch-scheduling'] : [])]);
      try {
        await waitFor(() => /listening on/.test(s.out()), 'the listening line', 60_000);
        const pids = [s.child.pid!, ...childrenOf(s.child.pid!)];
        if (mode === '--processes') assert.equal(pids.length, 3, s.out());
        for (const pid of pids) {
          const t = threadPolicies(pid);
          assert.ok(t.length > 1 && t.every((x) => x === (batch ? SCHED_BATCH : SCHED_OTHER)), `pid ${pid}: ${t}`);
        }
        if (mode === '--threads') assert.ok(threadPolicies(s.child.pid!).length >= 2 + 5, 'the worker threads are among them');
      } finally {
        s.child.kill('SIGTERM');
        await within(new Promise((r) => s.child.once('exit', r)), 'exit', 20_000);
      }
    });
  }
});

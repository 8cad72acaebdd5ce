/**
 * serve({ compactMemory }): a prefork worker keeps V8's young generation at its start size
 * (--max-semi-space-size=1 on its command line) under allocation churn; without the option
 * the same churn grows it. With it the worker also hands freed malloc memory back
 * (malloc_trim) once a burst is over, counted in its `c1m.memory` gather value. Prefork workers are fresh processes, so the process-wide policy
 * never touches the test runner (the threads test, last, does). Each trim follows one full V8
 * collection, timed in the same value; in threads mode each worker thread runs its own.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { serve } from '../../src/index.js';
import { compactChildEnv, compactTrimThreshold } from '../../src/engine/memory.js';
import { nativeAvailable } from '../helpers/backends.js';

const handler = new URL('../fixtures/young-gen.js', import.meta.url);

function ask(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      got += d;
      if (got.endsWith('\n')) {
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', reject);
    s.write(line);
  });
}

describe('serve compactMemory', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  for (const compactMemory of [true, false]) {
    test(`processes: 1, compactMemory ${compactMemory}: the worker's young generation ${compactMemory ? 'stays at 1 MiB semi-spaces' : 'grows'} under churn`, async () => {
      const srv = await serve({ handler, port: 0, host: '127.0.0.1', processes: 1, compactMemory });
      try {
        const [pid] = srv.pids();
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        assert.equal(argv.includes('--max-semi-space-size=1'), compactMemory, argv.join(' '));
        // One malloc arena for a compact worker (memory.ts, compactChildEnv), none asked otherwise.
        const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
        assert.equal(environ.some((e) => e.startsWith('GLIBC_TUNABLES=') && e.split(/[=:]/).includes('glibc.malloc.arena_max')), compactMemory, environ.filter((e) => e.startsWith('GLIBC')).join(' '));
        const newSpace = Number(await ask(srv.address.port, 'GROW\n'));
        assert.ok(Number.isInteger(newSpace) && newSpace > 0, `new space ${newSpace}`);
        // Two semi-spaces of 1 MiB with the option; V8 grows them to 8-16 MiB each without it.
        if (compactMemory) assert.ok(newSpace <= 2 << 20, `new space ${newSpace} B`);
        else assert.ok(newSpace > 4 << 20, `new space ${newSpace} B`);
      } finally {
        await srv.close(1000);
      }
    });
  }

  for (const compactMemory of [true, false]) {
    test(`processes: 1, compactMemory ${compactMemory}: the worker ${compactMemory ? 'calls malloc_trim(0) once a burst of connections is over' : 'never trims'}`, async () => {
      const srv = await serve({ handler, port: 0, host: '127.0.0.1', processes: 1, compactMemory, metricsPort: 0 });
      const trims = async (): Promise<number | null> => {
        const [v] = await srv.gather('c1m.memory');
        return (v as { trims?: number } | null | undefined)?.trims ?? null;
      };
      const settle = async (above: number): Promise<number | null> => {
        // The worker checks every 0.5 s and trims after 6 s of quiet; on a loaded box that can
        // take longer, so wait for it (bounded) rather than for a fixed time. Asked once a
        // second: each answer is work for the worker's event loop, which frequent asking would
        // keep from ever looking quiet.
        for (let i = 0; i < 60; i++) {
          const n = await trims();
          if (n === null || n > above) return n;
          await new Promise((r) => setTimeout(r, 1000));
        }
        return trims();
      };
      try {
        if (!compactMemory) {
          await Promise.all(Array.from({ length: 20 }, (_, i) => ask(srv.address.port, `hello ${i}\n`)));
          await new Promise((r) => setTimeout(r, 1500));
          assert.equal(await trims(), null, 'no compact-memory policy, no trims');
          return;
        }
        const atStart = await settle(0); // the start of the process is a burst too
        assert.ok(atStart !== null && atStart >= 1, `trims after start: ${atStart}`);
        assert.ok(Number(await ask(srv.address.port, 'GROW\n')) > 1 << 20, 'the churn uses both semi-spaces');
        await Promise.all(Array.from({ length: 20 }, (_, i) => ask(srv.address.port, `hello ${i}\n`)));
        const after = await settle(atStart);
        assert.ok(after !== null && after > atStart, `trims: ${atStart} before the burst, ${after} after`);
        // Each trim follows full V8 collections, timed, which leave the young generation the
        // churn grew to two 1 MiB semi-spaces with less than one resident.
        const [v] = await srv.gather('c1m.memory');
        const m = v as { trimThreshold: number | null; trims: number; gcs: number; gcMs: number; gcMsMax: number; newSpaceKb: number };
        assert.equal(m.gcs, m.trims, JSON.stringify(m));
        // One arena: glibc keeps up to 4 MiB of freed heap top while busy; the trim returns it.
        assert.equal(m.trimThreshold, compactTrimThreshold(compactChildEnv().GLIBC_TUNABLES), JSON.stringify(m));
        assert.ok(m.gcMs >= 0 && m.gcMsMax >= m.gcMs, JSON.stringify(m));
        assert.ok(m.newSpaceKb > 0 && m.newSpaceKb < 1024, JSON.stringify(m));
        // The same count and pause in the Prometheus metrics.
        const text = await (await fetch(`http://127.0.0.1:${srv.metricsAddress!.port}/metrics`)).text();
        const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
        assert.equal(value('c1m_memory_compactions'), m.gcs, text);
        assert.equal(value('c1m_memory_compaction_pause_max_seconds'), m.gcMsMax / 1000, text);
      } finally {
        await srv.close(1000);
      }
    });
  }

  test('processes: 1, compactMemory: a ramp that leaves the loop nearly idle is no quiet spell (no trim until it is over)', async () => {
    // What the million showed: 53 servers on 2 cores each see ~1 % of busy time during the
    // ramp, and took it for quiet. Here ~40 connections per check (0.5 s) for ~9 s keep this
    // worker's loop nearly idle too; the open count moving is what makes it a burst.
    const srv = await serve({ handler, port: 0, host: '127.0.0.1', processes: 1, compactMemory: true });
    const held: Socket[] = [];
    const trims = async (): Promise<number> => {
      const [v] = await srv.gather('c1m.memory');
      return (v as { trims: number }).trims;
    };
    const waitTrim = async (above: number): Promise<number> => {
      for (let i = 0; i < 60; i++) {
        const n = await trims();
        if (n > above) return n;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return trims();
    };
    try {
      const atStart = await waitTrim(0);
      assert.ok(atStart >= 1, `trims after start: ${atStart}`);
      const opened = (): Promise<void> => new Promise((resolve, reject) => {
        const s = connect(srv.address.port, '127.0.0.1', () => resolve());
        s.on('error', reject);
        held.push(s);
      });
      const t0 = performance.now();
      while (performance.now() - t0 < 9000) {
        await Promise.all(Array.from({ length: 20 }, opened));
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(await trims(), atStart, `no trim during a ${held.length}-connection ramp of 9 s`);
      const after = await waitTrim(atStart);
      assert.equal(after, atStart + 1, 'one trim once the ramp is over');
    } finally {
      for (const s of held) s.destroy();
      await srv.close(1000);
    }
  });

  test('execArgv reaches every prefork worker after compactMemory\'s flags, and V8 applies it', async () => {
    // Without compactMemory the same churn grows the semi-spaces past 4 MiB (test above): a
    // 2 MiB cap given through execArgv must hold them at 4 MiB.
    const srv = await serve({ handler, port: 0, host: '127.0.0.1', processes: 2, compactMemory: false, execArgv: ['--max-semi-space-size=2', '--max-opt=1'] });
    try {
      for (const pid of srv.pids()) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        assert.ok(argv.includes('--max-semi-space-size=2') && argv.includes('--max-opt=1'), argv.join(' '));
        assert.ok(!argv.includes('--max-semi-space-size=1'), argv.join(' '));
      }
      const newSpace = Number(await ask(srv.address.port, 'GROW\n'));
      assert.ok(Number.isInteger(newSpace) && newSpace > 0 && newSpace <= 4 << 20, `new space ${newSpace} B`);
    } finally {
      await srv.close(1000);
    }
  });

  test('execArgv: --flag strings only, and only with processes', async () => {
    for (const execArgv of [['max-opt=1'], '--max-opt=1', [1]] as unknown as string[][]) {
      await assert.rejects(serve({ handler, port: 0, processes: 1, execArgv }), { code: 'ERR_C1M_INVALID_OPTION' });
    }
    await assert.rejects(serve({ handler, port: 0, threads: 2, execArgv: ['--max-opt=1'] }), { code: 'ERR_C1M_INVALID_OPTION', message: /processes/ });
  });

  test('a non-boolean compactMemory is refused', async () => {
    await assert.rejects(serve({ handler, port: 0, compactMemory: 1 as unknown as boolean }), { code: 'ERR_C1M_INVALID_OPTION' });
  });

  // Last in the file: threads mode applies the process-wide policy to this test process.
  test('threads: 2, compactMemory: the workers\' young generation is capped, and every worker thread collects its own isolate after its bursts', async () => {
    const srv = await serve({ handler, port: 0, host: '127.0.0.1', threads: 2, compactMemory: true });
    const figures = async (): Promise<{ compact: boolean; trims: number; gcs: number; newSpaceKb: number }[]> =>
      (await srv.gather('c1m.memory')) as { compact: boolean; trims: number; gcs: number; newSpaceKb: number }[];
    const settle = async (above: number[]): Promise<number[]> => {
      // Asked once a second (see above): each thread trims after 6 s of quiet of its own loop.
      for (let i = 0; i < 60; i++) {
        const gcs = (await figures()).map((f) => f?.gcs ?? 0);
        if (gcs.length === 2 && gcs.every((n, k) => n > (above[k] ?? 0))) return gcs;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return (await figures()).map((f) => f?.gcs ?? 0);
    };
    try {
      const atStart = await settle([0, 0]); // each thread's start is a burst
      assert.equal(atStart.length, 2, `figures of ${atStart.length} threads`);
      for (const f of await figures()) {
        assert.equal(f.compact, true, JSON.stringify(f));
        assert.equal(f.gcs, f.trims, JSON.stringify(f));
      }
      // Churn in whichever thread the connections land on (round-robin: both), then quiet.
      const sizes = await Promise.all(Array.from({ length: 4 }, () => ask(srv.address.port, 'GROW\n')));
      // The workers' young generation is capped like a prefork child's (COMPACT_THREAD_LIMITS).
      for (const size of sizes.map(Number)) assert.ok(size > 0 && size <= 2 << 20, `new space ${size} B`);
      const after = await settle(atStart);
      assert.ok(after.every((n, k) => n > atStart[k]!), `collections per thread: ${atStart} before the churn, ${after} after`);
      for (const f of await figures()) assert.ok(f.newSpaceKb > 0 && f.newSpaceKb < 1024, JSON.stringify(f));
    } finally {
      await srv.close(1000);
    }
  });
});

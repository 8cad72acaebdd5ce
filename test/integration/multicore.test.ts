/**
 * Multi-core servers (native backend only): worker threads behind one acceptor, replaced when
 * one dies, and prefork processes under a supervisor that restarts a killed worker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serve, type WorkerExitInfo } from '../../src/index.js';
// serve() starts src/engine/worker.js by URL; this type-only import makes tsc emit it into build-test.
import type {} from '../../src/engine/worker.js';
import { nativeAvailable } from '../helpers/backends.js';
import { HOST, RawClient, firstDiff, payload, rawClient, waitFor, within } from '../helpers/net.js';

const handler = new URL('../fixtures/who-echo.js', import.meta.url);
const crashHandler = new URL('../fixtures/crash-echo.js', import.meta.url);

interface Who {
  client: RawClient;
  pid: number;
  tid: number;
}

/** Connect and ask which worker serves the connection. */
async function who(port: number): Promise<Who> {
  const client = await rawClient(port);
  await client.send('WHO\n');
  await waitFor(() => client.text().endsWith('\n') || client.closed, 'WHO reply');
  const m = /^(\d+):(\d+)\n$/.exec(client.text());
  assert.ok(m, `WHO reply ${JSON.stringify(client.text())}`);
  client.chunks.length = 0;
  client.length = 0;
  return { client, pid: Number(m[1]), tid: Number(m[2]) };
}

async function echoes(c: RawClient, data: Buffer): Promise<void> {
  const before = c.length;
  await c.send(data);
  await c.waitBytes(before + data.length);
  assert.equal(firstDiff(c.bytes().subarray(before), data), -1);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function refused(port: number): Promise<void> {
  const c = new RawClient(port);
  await assert.rejects(within(c.connected, 'connect after close'), { code: 'ECONNREFUSED' });
}

describe('multicore (native)', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('threads: round-robin hands connections to both workers; many connections echo', { timeout: 120_000 }, async () => {
    const h = await serve({ handler, threads: 2, balance: 'round-robin', port: 0, host: HOST, backend: 'native' });
    const clients: RawClient[] = [];
    try {
      assert.equal(h.mode, 'threads');
      const perThread = new Map<number, number>();
      for (let i = 0; i < 20; i++) {
        const w = await who(h.address.port);
        clients.push(w.client);
        assert.equal(w.pid, process.pid, 'threads mode serves in this process');
        assert.notEqual(w.tid, 0, 'served on a worker thread, not the main thread');
        perThread.set(w.tid, (perThread.get(w.tid) ?? 0) + 1);
      }
      assert.deepEqual([...perThread.values()], [10, 10], `round-robin over two workers: ${JSON.stringify([...perThread])}`);
      await Promise.all(Array.from({ length: 100 }, async (_, i) => {
        const c = await rawClient(h.address.port);
        clients.push(c);
        await echoes(c, payload(16 * 1024 + i, i));
        c.socket.end();
        await c.waitClosed();
      }));
      // The first connections are still served.
      await Promise.all(clients.slice(0, 20).map((c, i) => echoes(c, payload(100, 500 + i))));
      await within(h.close(2000), 'close');
      await Promise.all(clients.map((c) => c.waitClosed()));
      await refused(h.address.port);
    } finally {
      for (const c of clients) c.destroy();
      await h.close(0);
    }
  });

  test('threads: a worker thread that dies (process.exit, a throw outside the guard, an unhandled rejection) is replaced; the others keep serving', { timeout: 120_000 }, async () => {
    // gate[0] counts handlers created; the ones after the first three wait until gate[1] != 0.
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const exits: WorkerExitInfo[] = [];
    const errors: Error[] = [];
    const h = await serve({
      handler: crashHandler, handlerOptions: { gate, open: 3 }, threads: 3, port: 0, host: HOST, backend: 'native',
      onWorkerExit: (info) => void exits.push(info), onError: (err) => void errors.push(err),
    });
    const clients: RawClient[] = [];
    const tracked = async (): Promise<Who> => {
      const w = await who(h.address.port);
      clients.push(w.client);
      return w;
    };
    try {
      const live = new Set<number>();
      const held: Who[] = [];
      for (let i = 0; i < 9; i++) held.push(await tracked());
      held.forEach((w) => live.add(w.tid));
      assert.equal(live.size, 3, 'round-robin reached every worker');

      const kills = [
        { line: 'EXIT\n', code: 7, error: undefined },
        { line: 'THROW\n', code: 1, error: /thrown outside the callback guard/ },
        { line: 'REJECT\n', code: 1, error: /rejection nobody handles/ },
      ];
      for (const [round, kill] of kills.entries()) {
        const open = held.filter((w) => !w.client.closed);
        const victim = open[0]!.tid;
        const onVictim = open.filter((w) => w.tid === victim), survivors = open.filter((w) => w.tid !== victim);
        await onVictim[0]!.client.send(kill.line);
        await waitFor(() => exits.length === round + 1, `onWorkerExit after ${kill.line.trim()}`);
        assert.deepEqual(exits[round], { pid: process.pid, threadId: victim, code: kill.code, signal: null });
        if (kill.error) assert.match(errors.at(-1)?.message ?? '', kill.error);
        live.delete(victim);
        // The dead worker's connections went with its reactor; the others' still echo.
        await Promise.all(onVictim.map((w) => w.client.waitClosed()));
        await Promise.all(survivors.map((w, i) => echoes(w.client, payload(2000, round * 100 + i))));

        // The gap: the replacement is held in createHandler; new connections go to the live workers.
        await waitFor(() => Atomics.load(gate, 0) === 3 + round + 1, 'the replacement to start');
        // Retargeted to the two live workers, round-robin alternates between them (without the
        // retarget native code would skip the dead target and give its turns to one neighbour).
        const inGap = new Map<number, number>();
        for (let i = 0; i < 6; i++) {
          const w = await tracked();
          assert.ok(live.has(w.tid), `served in the gap by a live worker (${w.tid}), not ${victim}`);
          await echoes(w.client, payload(700, i));
          held.push(w);
          inGap.set(w.tid, (inGap.get(w.tid) ?? 0) + 1);
        }
        assert.deepEqual([...inGap.values()], [3, 3], `round-robin over the live workers in the gap: ${JSON.stringify([...inGap])}`);

        // Let the replacement finish; once ready the acceptor hands it connections too.
        Atomics.store(gate, 1, 1);
        Atomics.notify(gate, 1);
        let replacement: Who | undefined;
        for (let i = 0; i < 400 && !replacement; i++) {
          const w = await tracked();
          assert.notEqual(w.tid, victim);
          await echoes(w.client, payload(300, i));
          held.push(w);
          if (!live.has(w.tid)) replacement = w;
        }
        assert.ok(replacement, 'the replacement worker is handed connections');
        live.add(replacement.tid);
        Atomics.store(gate, 1, 0);
        for (const w of held) if (!w.client.closed) await echoes(w.client, payload(50, round));
      }
      assert.equal(exits.length, 3);
      await within(h.close(2000), 'close');
      await Promise.all(clients.map((c) => c.waitClosed()));
      await refused(h.address.port);
    } finally {
      Atomics.store(gate, 1, 1);
      Atomics.notify(gate, 1);
      for (const c of clients) c.destroy();
      await h.close(0);
    }
  });

  test('processes: connections spread; a killed worker is restarted while the other keeps serving', { timeout: 120_000 }, async () => {
    const exits: { pid: number | undefined; signal: NodeJS.Signals | null }[] = [];
    const h = await serve({
      handler, processes: 2, port: 0, host: HOST, backend: 'native',
      onWorkerExit: (info) => void exits.push({ pid: info.pid, signal: info.signal }),
    });
    const clients: RawClient[] = [];
    const everyPid = new Set<number>();
    try {
      assert.equal(h.mode, 'processes');
      const pids = h.pids();
      assert.equal(pids.length, 2);
      assert.ok(!pids.includes(process.pid));
      pids.forEach((p) => everyPid.add(p));
      const conns: Who[] = [];
      for (let i = 0; i < 40; i++) conns.push(await who(h.address.port));
      clients.push(...conns.map((w) => w.client));
      assert.deepEqual(new Set(conns.map((w) => w.pid)), new Set(pids), 'both workers got connections');

      const [victim, survivor] = pids as [number, number];
      process.kill(victim, 'SIGKILL');
      const onVictim = conns.filter((w) => w.pid === victim), onSurvivor = conns.filter((w) => w.pid === survivor);
      await Promise.all(onVictim.map((w) => w.client.waitClosed()));
      await Promise.all(onSurvivor.map((w, i) => echoes(w.client, payload(1000, i))));

      await waitFor(() => h.pids().length === 2 && !h.pids().includes(victim), 'a restarted worker', 60_000);
      assert.deepEqual(exits, [{ pid: victim, signal: 'SIGKILL' }]);
      const restarted = h.pids().find((p) => p !== survivor)!;
      everyPid.add(restarted);
      // New connections work, and the restarted worker serves some of them once it listens.
      let servedByNew = false;
      for (let i = 0; i < 400 && !servedByNew; i++) {
        const w = await who(h.address.port);
        clients.push(w.client);
        assert.ok(w.pid === survivor || w.pid === restarted, `served by ${w.pid}`);
        await echoes(w.client, payload(500, i));
        servedByNew = w.pid === restarted;
      }
      assert.ok(servedByNew, 'the restarted worker accepts connections');
      await Promise.all(onSurvivor.map((w, i) => echoes(w.client, payload(10, i))));

      await within(h.close(2000), 'close', 30_000);
      assert.deepEqual(h.pids(), []);
      for (const p of everyPid) assert.equal(alive(p), false, `worker ${p} is gone`);
      await Promise.all(clients.map((c) => c.waitClosed()));
      await refused(h.address.port);
    } finally {
      for (const c of clients) c.destroy();
      await h.close(0);
      for (const p of h.pids()) process.kill(p, 'SIGKILL');
    }
  });
});

/**
 * Out of file descriptors: a server in a child process limited to 64 fds, flooded with more
 * connections than it can hold. It must keep running, must not busy-loop while saturated
 * (a behaviour check on CPU time, not a performance threshold), and must accept again once
 * clients leave.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { backends } from '../helpers/backends.js';
import { RawClient, deferred, sleep, waitFor, within } from '../helpers/net.js';

const fixture = fileURLToPath(new URL('../fixtures/emfile-server.js', import.meta.url));
const CLIENTS = 120;

let prlimit = '';
try {
  prlimit = execFileSync('which', ['prlimit'], { encoding: 'utf8' }).trim();
} catch {
  // not installed: the tests are skipped
}
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 on
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // #14 utime, #15 stime
}

type Stats = { connections: number; acceptPauses: number; acceptErrors: number; otherErrors: number; codes: string[] };

/** The child server and a request/response helper over its stdin/stdout. */
async function startChild(backend: string): Promise<{ child: ChildProcessWithoutNullStreams; port: number; stats: () => Promise<Stats> }> {
  const child = spawn(prlimit, ['--nofile=64:64', process.execPath, fixture, backend], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiting: ((m: Record<string, unknown>) => void)[] = [];
  const ready = deferred<number>();
  child.once('exit', (code) => ready.reject(new Error(`server exited (${code}): ${stderr}`)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.type === 'ready') ready.resolve(m.port as number);
    else waiting.shift()?.(m);
  });
  const port = await within(ready.promise, 'child server ready');
  const stats = (): Promise<Stats> => {
    const d = deferred<Stats>();
    waiting.push((m) => d.resolve(m as unknown as Stats));
    child.stdin.write('stats\n');
    return within(d.promise, 'stats reply');
  };
  return { child, port, stats };
}

for (const backend of backends) {
  describe(`EMFILE (${backend})`, () => {
    test('a server out of fds keeps running, does not spin, and accepts again when clients leave', { timeout: 120_000, skip: !prlimit && 'prlimit not found' }, async () => {
      const { child, port, stats } = await startChild(backend);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const clients: RawClient[] = [];
      try {
        assert.equal(readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim().startsWith('node'), true, 'prlimit exec()s node in place');
        // Idle first, long enough (four 250 ms ticks with nothing to time) for the native
        // reactor to stop its tick: the accept pause must start it again to resume.
        await sleep(1500);
        let echoed = 0, closedEarly = 0;
        for (let i = 0; i < CLIENTS; i++) {
          const c = new RawClient(port);
          clients.push(c);
          c.connected.then(() => c.socket.write('x'), () => {});
          let done = false;
          c.socket.on('data', () => {
            if (!done) (done = true), echoed++;
          });
          c.socket.on('close', () => {
            if (!done) (done = true), closedEarly++;
          });
        }
        // Saturated: native pauses accepting (EMFILE); portable (libuv) accepts and closes the
        // excess connections at once, so every client is either served or closed.
        if (backend === 'native') {
          let s = await stats();
          for (const start = Date.now(); s.acceptPauses === 0; s = await stats()) {
            if (Date.now() - start > 30_000) assert.fail('no accept pause within 30 s');
            await sleep(20);
          }
          assert.ok(s.codes.includes('EMFILE'), `accept errors: ${s.codes.join(',')}`);
        } else {
          await waitFor(() => echoed + closedEarly === CLIENTS, `every client served or closed (${echoed} + ${closedEarly})`);
        }
        // The pause can be seen before the first echo has come back: wait for it.
        await waitFor(() => echoed > 0, 'some connections were served');
        assert.ok(echoed < CLIENTS, 'the server could not hold every connection');
        const served = (await stats()).connections;
        assert.ok(served > 0 && served < CLIENTS, `server holds ${served} connections`);

        // The saturated window: the server must sleep, not spin on a ready listener.
        const cpu0 = cpuSeconds(child.pid!), t0 = process.hrtime.bigint();
        await sleep(2000);
        const cpu = cpuSeconds(child.pid!) - cpu0, wall = Number(process.hrtime.bigint() - t0) / 1e9;
        assert.ok(cpu < 0.5 * wall, `server used ${cpu.toFixed(2)} s of CPU in ${wall.toFixed(2)} s while saturated`);
        assert.equal(child.exitCode, null, 'the server is still running');

        // Clients leave; a new connection is accepted and echoes.
        for (const c of clients) c.destroy();
        await waitFor(() => clients.every((c) => c.closed), 'clients closed');
        // A connection that arrives while the server still closes the old ones may be dropped
        // (libuv accepts and closes while out of fds): retry until one is served.
        let late: RawClient | undefined;
        for (let attempt = 0; attempt < 400 && late?.text() !== 'again'; attempt++) {
          if (attempt > 0) await sleep(50);
          late = new RawClient(port);
          clients.push(late);
          try {
            await within(late.connected, 'late connect');
          } catch {
            continue;
          }
          late.socket.write('again');
          await waitFor(() => late!.length >= 5 || late!.closed, 'echo or close', 60_000);
        }
        assert.equal(late?.text(), 'again', 'a later connection is served');
        const final = await stats();
        if (backend === 'native') assert.ok(final.acceptPauses > 0);
        assert.equal(final.otherErrors, 0);
        child.stdin.write('exit\n');
        assert.equal(await within(exited, 'server exit'), 0);
      } finally {
        for (const c of clients) c.destroy();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  });
}

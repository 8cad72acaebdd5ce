/**
 * `c1m bench million` at small scale: 2 server processes (prefork) and 2 client workers forced
 * by options, two steps, the CLI run as a child process. Checked: every step reached its
 * target and echoed once on every connection, the memory figures are there, and no process
 * it started (server leader, prefork workers, client workers) outlives it. 15,000 + 15,000 per
 * side where the open-file limit allows it (about 10 s here), else 1,500 + 1,500.
 * Also the layout arithmetic, in-process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { planMillion, split } from '../../src/cli/bench-million.js';
import type { MillionResult } from '../../src/cli/bench-results.js';
import { nofileLimit } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { freePort } from '../helpers/net.js';
import { descendants, SCHED_BATCH, SCHED_OTHER, threadPolicies } from '../helpers/proc.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/c1m.js', import.meta.url));

function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
}

describe('c1m bench million layout', () => {
  test('server processes keep headroom under the limit; clients fill it; one source address per 10,000', () => {
    const auto = { serverProcesses: 'auto', clientProcesses: 'auto', connsPerProcess: undefined, sourceIps: 'auto' } as const;
    const m = planMillion(1_000_000, auto, 19_500);
    assert.equal(m.serverCap, 19_000);
    assert.equal(m.serverProcesses, 53);
    assert.equal(m.clients.length, 52);
    assert.equal(m.clients.reduce((a, b) => a + b, 0), 1_000_000);
    assert.ok(Math.max(...m.clients) <= 19_500);
    assert.equal(m.sources.length, 100);
    const forced = planMillion(6000, { ...auto, serverProcesses: 2, clientProcesses: 3 }, 19_500);
    assert.deepEqual([forced.serverProcesses, forced.clients], [2, [2000, 2000, 2000]]);
    assert.equal(planMillion(6000, { ...auto, connsPerProcess: 1500 }, 19_500).serverProcesses, 4);
    assert.throws(() => planMillion(50_000, { ...auto, clientProcesses: 2 }, 19_500), /25,000 per process; the open-file limit allows 19,500/);
    assert.deepEqual(split(10, 3), [4, 3, 3]);
    assert.deepEqual(split(2, 3), [1, 1, 0]);
  });
});

const limit = nativeAvailable ? nofileLimit().connections : 0;
const big = limit >= 16_000;
const steps = big ? [15_000, 30_000] : [1_500, 3_000];

describe('c1m bench million', { skip: (!nativeAvailable || limit < 2_000) && 'needs the native backend and 2,000 open files per process' }, () => {
  test(`--steps ${steps.join(',')} over 2 server and 2 client processes`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1m-million-'));
    try {
      const report = join(dir, 'million.html');
      const args = [CLI, 'bench', 'million', '--steps', steps.join(','), '--port', String(await freePort()), '--server-processes', '2', '--client-processes', '2',
        '--hold', '0.2', '--min-available-gib', '0.5', '--json', '--report', report];
      const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      const seen = new Set<number>();
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        // While the steps run, note every process below the CLI: server group and workers.
        if (/step \d\/2/.test(d)) for (const p of descendants(child.pid!)) seen.add(p);
      });
      const guard = setTimeout(() => child.kill('SIGKILL'), 110_000);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearTimeout(guard);
      assert.equal(code, 0, stderr);
      const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as MillionResult;
      assert.equal(r.kind, 'million');
      assert.equal(r.stopped, false);
      assert.deepEqual(r.steps_asked, steps);
      assert.deepEqual(r.steps_skipped, []);
      assert.equal(r.server.processes, 2);
      assert.equal(r.client.processes, 2);
      assert.deepEqual(r.client.per_process, [steps[1]! / 2, steps[1]! / 2]);
      assert.equal(r.steps.length, 2);
      // The default client warm-up: 200 connections per client process (of step 1's 750 each),
      // 10 echo rounds on them; they stay open as the first of step 1's connections.
      const w = r.client.warmup!;
      assert.deepEqual(w, { ...w, connections: 200, rounds: 10, deliveries: 2 * 200 * 10, expected: 2 * 200 * 10, error: null });
      r.steps.forEach((s, i) => {
        assert.equal(s.target, steps[i]);
        assert.equal(s.connected, steps[i], `step ${i + 1} connected`);
        assert.equal(s.failed, 0);
        assert.deepEqual(s.errors, {});
        assert.equal(s.added, steps[i]! - (steps[i - 1] ?? 2 * w.connections));
        assert.equal(s.echo.sent, steps[i]);
        assert.equal(s.echo.answered, steps[i], `step ${i + 1}: one echo per connection`);
        assert.equal(s.echo.latency!.count, steps[i]);
        assert.equal(s.server_processes, 3, 'the prefork supervisor and its 2 workers');
        for (const k of ['mem_available_kb', 'slab_kb', 'sunreclaim_kb', 'kernel_bytes_per_conn', 'server_bytes_per_conn', 'server_bytes_per_added_conn', 'listen_overflows', 'syn_retransmits'] as const) {
          assert.equal(typeof s[k], 'number', `${k} present`);
        }
        assert.ok(s.server_rss_kb > 0 && s.client_rss_kb > 0);
        // The connect phase's CPU: box-wide from /proc/stat, and the connects cost both sides CPU.
        const c = s.connect_cpu!;
        assert.ok(c.box_busy !== null && c.box_busy > 0 && c.box_busy <= 1, JSON.stringify(c));
        assert.ok(c.server_user_s + c.server_sys_s + c.client_user_s + c.client_sys_s > 0 && c.us_per_conn !== null && c.us_per_conn > 0, JSON.stringify(c));
        assert.match(stderr, new RegExp(`step ${i + 1}/2: .* open after .*connect CPU: box \\d+% busy, server .* us per connection`));
        assert.ok(s.sockets !== null && s.sockets.tcp_estab >= 2 * steps[i]!, 'both ends of every connection established');
      });
      assert.ok(r.baseline.server_rss_kb > 0 && r.baseline.slab_kb !== null);
      assert.equal(r.summary.connected, steps[1]);
      assert.ok(Math.abs(r.summary.connect_s! - (r.steps[0]!.connect_s + r.steps[1]!.connect_s)) < 0.01);
      assert.equal(r.summary.server_bytes_per_conn, r.steps[1]!.server_bytes_per_conn);
      assert.equal(typeof r.summary.server_bytes_per_conn_after_first_step, 'number');
      assert.match(stderr, /server: env NODE_OPTIONS=.*--expose-gc --max-semi-space-size=1/);
      // Clean-up: reported, and checked here independently.
      assert.equal(r.cleanup.ok, true, JSON.stringify(r.cleanup));
      assert.deepEqual(r.cleanup.pids_alive_after, []);
      assert.equal(r.cleanup.pids_started, 5, 'server supervisor, 2 prefork workers, 2 client workers');
      assert.ok(seen.size >= 5, `processes seen while running: ${[...seen]}`);
      for (const pid of seen) assert.equal(alive(pid), false, `pid ${pid} gone`);
      const page = readFileSync(report, 'utf8');
      assert.match(page, /one-box million ramp/);
      assert.match(page, /Memory per connection/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--tls: every connection a verified TLS handshake that echoes once; the certificate is gone after', { timeout: 120_000 }, async () => {
    const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('c1m-million-tls-')));
    const r = await runMillion(['--tls', '--steps', '600,1200', '--hold', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.tls, true);
    assert.match(r.result.server.command, /serve echo --tls-cert \S+ --tls-key \S+/);
    assert.deepEqual(r.result.steps.map((s) => [s.connected, s.echo.answered]), [[600, 600], [1200, 1200]]);
    assert.equal(r.result.cleanup.ok, true);
    for (const pid of r.seen) assert.equal(alive(pid), false, `pid ${pid} gone`);
    const left = readdirSync(tmpdir()).filter((f) => f.startsWith('c1m-million-tls-') && !before.has(f));
    assert.deepEqual(left, []);
  });

  test('--tcp-keepalive: the server probes every held connection; the hold reports its CPU and the probes', { timeout: 120_000 }, async () => {
    const r = await runMillion(['--steps', '400', '--tcp-keepalive', '1,1,3', '--hold', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.result.server.command, /serve echo( --\S+ \S+)* --tcp-keepalive 1,1,3/);
    assertPolicies(r, SCHED_BATCH, 'the default');
    // The clients hold V8's young generation at 1 MiB semi-spaces (bench-million.ts, CLIENT_NODE_FLAGS).
    const clients = [...r.cmds.values()].filter((cmd) => cmd.includes('bench-worker'));
    assert.equal(clients.length, 2, [...r.cmds.values()].join('\n'));
    for (const cmd of clients) assert.match(cmd, /--max-semi-space-size=1/);
    assert.deepEqual(r.result.client.node_flags, ['--max-semi-space-size=1', '--expose-gc']);
    const s = r.result.steps[0]!;
    assert.equal(s.connected, 400);
    assert.equal(s.closed_early, 0, 'every connection answered its probes');
    assert.ok(s.hold && s.hold.window_s >= 3, JSON.stringify(s.hold));
    assert.ok(s.hold.cpu.box_cpu_s !== null && s.hold.cpu.us_per_conn === null, JSON.stringify(s.hold));
    // idle 1 s, interval 1 s: each held connection is probed about twice in 3 s (other sockets
    // on the box may add probes of their own)
    assert.ok(s.hold.keepalive_probes !== null && s.hold.keepalive_probes >= 400, JSON.stringify(s.hold));
    assert.equal(s.echo.answered, 400);
    const bad = spawnSync(process.execPath, [CLI, 'bench', 'million', '--steps', '400', '--tcp-keepalive', '1,x'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--tcp-keepalive takes IDLE\[,INTERVAL\[,COUNT\]\]/);
  });

  test('--no-batch-scheduling: the server and the clients run under SCHED_OTHER (SCHED_BATCH by default, checked above); --server-poll-ms reaches the server', { timeout: 120_000 }, async () => {
    const r = await runMillion(['--steps', '400', '--hold', '0', '--no-batch-scheduling', '--server-poll-ms', '20']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result.steps[0]!.connected, 400);
    assert.equal(r.result.steps[0]!.echo.answered, 400, 'every echo through servers polling from a timer');
    assert.equal(r.result.client.batch_scheduling, false);
    assert.doesNotMatch(r.result.server.command, /--batch-scheduling/);
    assert.match(r.result.server.command, / --poll-interval 20( |$)/);
    assertPolicies(r, SCHED_OTHER, '--no-batch-scheduling');
  });

  test('stops cleanly below the memory floor and on SIGINT; nothing it started survives', { timeout: 120_000 }, async () => {
    // A floor no box meets: stopped before the first step, everything cleaned up.
    const low = await runMillion(['--steps', '500', '--min-available-gib', '100000', '--hold', '0']);
    assert.equal(low.code, 1, low.stderr);
    assert.equal(low.result.stopped, 'low_memory');
    assert.deepEqual(low.result.steps, []);
    assert.equal(low.result.cleanup.ok, true);
    for (const pid of low.seen) assert.equal(alive(pid), false, `pid ${pid} gone`);

    // SIGINT while a step holds: reported as stopped by the signal, exit 130, nothing left.
    const int = await runMillion(['--steps', '500,1000', '--hold', '60', '--min-available-gib', '0.5'], /step 1\/2: 500 open after .*; holding 60s/);
    assert.equal(int.code, 130, int.stderr);
    assert.equal(int.result.stopped, 'signal');
    assert.equal(int.result.steps.length, 1);
    assert.equal(int.result.steps[0]!.connected, 500);
    assert.deepEqual(int.result.cleanup.pids_alive_after, []);
    assert.ok(int.seen.size >= 5, `processes seen: ${[...int.seen]}`);
    for (const pid of int.seen) assert.equal(alive(pid), false, `pid ${pid} gone`);
  });
});

/**
 * Run `c1m bench million` with 2 + 2 processes and `extra`; with `interruptOn`, send SIGINT
 * once stderr matches it (after noting every process below the CLI).
 */
/** Every thread of the server's processes (supervisor and workers) and of the client workers ran under `policy`. */
function assertPolicies(r: { result: MillionResult; policies: Map<number, number[]>; cmds: Map<number, string> }, policy: number, what: string): void {
  assert.equal(r.result.client.batch_scheduling, policy === SCHED_BATCH);
  assert.equal(r.result.client.poll_ms, 0, 'TCP million clients wake per event by default');
  assert.equal(/ --batch-scheduling( |$)/.test(r.result.server.command), policy === SCHED_BATCH, r.result.server.command);
  // server supervisor + 2 workers + 2 clients (the server's shell has exec'd into node)
  assert.ok(r.policies.size >= 5, `processes sampled: ${[...r.policies.keys()]}`);
  for (const [pid, threads] of r.policies) {
    if (threads.length === 0) continue; // gone already
    assert.ok(threads.every((p) => p === policy), `${what}: pid ${pid} (${r.cmds.get(pid)}) threads' policies ${threads}`);
  }
}

function readCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').slice(0, 200);
  } catch {
    return '?';
  }
}

/** The run's JSON result and stderr; `seen`: every process below the CLI while it ran;
 * `policies`, `cmds`: the scheduling policy of every thread of those processes, and their command
 * lines, once a step's connects were done. */
async function runMillion(extra: string[], interruptOn?: RegExp): Promise<{ code: number | null; stderr: string; result: MillionResult; seen: Set<number>; policies: Map<number, number[]>; cmds: Map<number, string> }> {
  const args = [CLI, 'bench', 'million', '--port', String(await freePort()), '--server-processes', '2', '--client-processes', '2', '--json', ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '', sent = false;
  const seen = new Set<number>();
  const policies = new Map<number, number[]>();
  const cmds = new Map<number, string>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    const now = descendants(child.pid!);
    for (const p of now) seen.add(p);
    if (/step \d+\/\d+: .* open after/.test(d)) {
      for (const p of now) {
        policies.set(p, threadPolicies(p));
        cmds.set(p, readCmd(p));
      }
    }
    if (interruptOn && !sent && interruptOn.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 110_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(guard);
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null') as MillionResult;
  return { code, stderr, result, seen, policies, cmds };
}

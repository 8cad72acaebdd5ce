/**
 * `c1m bench` end to end at small scale: the CLI runs as a child process (it forks its own
 * workers) against a c1m echo server, either spawned by `--spawn` or listening in this process
 * (so the test can see which source addresses the connections came from). Argument errors and
 * the layout arithmetic run in-process. No timing thresholds: only counts and shapes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { benchMain, isLoopback, planRun, sourceAddresses } from '../../src/cli/bench.js';
import type { BenchResult, BenchSweepResult } from '../../src/cli/bench-results.js';
import { latencyHistogram, encodeHistogram, loadHistograms, mergeHistograms, summarize } from '../../src/cli/bench-stats.js';
import { createWebSocketHandler, nofileLimit, type CloseReason } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { childrenOf } from '../helpers/proc.js';
import { HOST, freePort, startServer, waitFor, type TestServer } from '../helpers/net.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/c1m.js', import.meta.url));
const GUARD = { timeout: 120_000 };

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line, parsed. */
  json: BenchResult;
  pid: number;
}

/**
 * Run the CLI (`node bin/c1m.js ...`, or a shell line when `shell` is set); `onStderr` sees
 * stderr as it grows and may act on the child.
 */
function runCli(args: string[], opts: { shell?: string; onStderr?: (text: string, pid: number) => void } = {}): Promise<CliRun> {
  const child = opts.shell
    ? spawn('/bin/sh', ['-c', opts.shell], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    opts.onStderr?.(stderr, child.pid!);
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 110_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(guard);
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let json = undefined as unknown as BenchResult;
      try {
        json = JSON.parse(last) as BenchResult;
      } catch {
        // not JSON: the assertions on `json` report it with stderr
      }
      resolve({ code, stdout, stderr, json, pid: child.pid! });
    });
  });
}

function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** A c1m echo server in this process that tallies connections by source address. */
async function countingServer(): Promise<TestServer & { bySource: Map<string, number>; open: () => number; maxOpen: () => number; closes: Map<string, number> }> {
  const bySource = new Map<string, number>(), closes = new Map<string, number>();
  let open = 0, maxOpen = 0;
  const srv = await startServer('native', {
    onOpen(conn) {
      open++;
      maxOpen = Math.max(maxOpen, open);
      const a = conn.remoteAddress ?? '?';
      bySource.set(a, (bySource.get(a) ?? 0) + 1);
    },
    onData(conn, data) {
      conn.write(data);
    },
    onClose(_c, r: CloseReason) {
      open--;
      closes.set(r.kind, (closes.get(r.kind) ?? 0) + 1);
    },
  });
  return Object.assign(srv, { bySource, closes, open: () => open, maxOpen: () => maxOpen });
}

/**
 * A c1m WebSocket echo server in this process that tallies upgrade targets and close codes;
 * an upgrade to `/deny` is refused with 403.
 */
async function wsCountingServer(): Promise<TestServer & { targets: Map<string, number>; codes: Map<number, number>; open: () => number }> {
  const targets = new Map<string, number>(), codes = new Map<number, number>();
  let open = 0;
  const srv = await startServer('native', createWebSocketHandler({
    onUpgrade(req) {
      targets.set(req.target, (targets.get(req.target) ?? 0) + 1);
      return req.target === '/deny' ? { status: 403 } : undefined;
    },
    onOpen() {
      open++;
    },
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
    onClose(_ws, code) {
      open--;
      codes.set(code, (codes.get(code) ?? 0) + 1);
    },
  }));
  return Object.assign(srv, { targets, codes, open: () => open });
}

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function benchInProcess(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Sink(), err = new Sink();
  const code = await benchMain(argv, out, err);
  return { code, out: out.text, err: err.text };
}

describe('c1m bench arguments', () => {
  const cases: [string[], RegExp][] = [
    [['hold', '-c', '10'], /--port is required/],
    [['hold', '--port', '9'], /-c\/--connections is required/],
    [[], /a scenario is required: hold, echo/],
    [['nope', '--port', '9', '-c', '1'], /unknown scenario "nope"; available: hold, echo/],
    [['echo', '--port', '0', '-c', '1'], /--port must be an integer from 1 to 65535, got "0"/],
    [['echo', '--port', '9', '-c', 'many'], /--connections must be an integer/],
    [['echo', '--port', '9', '-c', '1', '--depth', '2', '--rate', '5'], /--depth and --rate exclude each other/],
    [['hold', '--port', '9', '-c', '1', '--size', '100'], /--size applies to the echo, broadcast, ws-echo scenarios only/],
    [['hold', '--port', '9', '-c', '1', '--verify'], /--verify applies to the echo, ws-echo scenarios only/],
    [['echo', '--port', '9', '-c', '1', '--deflate'], /--deflate applies to the ws-hold, ws-echo scenarios only/],
    [['echo', '--port', '9', '-c', '1', '--size', '1048576', '--depth', '16'], /at most 8 MiB in flight/],
    [['echo', '--port', '9', '-c', '1', '-d', '0'], /--duration must be a number of seconds/],
    [['echo', '--port', '9', '-c', '1', '--spawn', 'x', '--pid', '1'], /--spawn and --pid exclude each other/],
    [['echo', '--port', '9', '-c', '1', '--pid', '4194303'], /--pid 4194303: no such process/],
    [['echo', '--port', '9', '-c', '1', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['echo', 'extra', '--port', '9', '-c', '1'], /unexpected argument "extra"/],
    [['hold', '--port', '9', '-c', '1', '--path', '/x'], /--path applies to the http, ws-hold, ws-echo scenarios only/],
    [['http', '--port', '9', '-c', '1', '--rate', '5'], /--rate applies to the echo, broadcast, ws-echo scenarios only/],
    [['http', '--port', '9', '-c', '1', '--path', 'no-slash'], /--path must be an origin-form request target/],
    [['ws-hold', '--port', '9', '-c', '1', '--path', '*'], /--path of a WebSocket scenario must be \/path\[\?query\] \(no fragment\), got "\*"/],
    [['ws-echo', '--port', '9', '-c', '1', '--path', '/a#b'], /--path of a WebSocket scenario must be/],
    [['ws-hold', '--port', '9', '-c', '1', '--size', '8'], /--size applies to the echo, broadcast, ws-echo scenarios only/],
    [['ws-echo', '--port', '9', '-c', '1', '--depth', '2', '--rate', '5'], /--depth and --rate exclude each other/],
    [['echo', '--port', '9', '-c', '1', '--target', 'nocmd'], /--target must be NAME=CMD/],
    [['echo', '--port', '9', '-c', '1', '--target', 'a=x', '--target', 'a=y'], /--target names must differ/],
    [['echo', '--port', '9', '-c', '1', '--target', 'a=x', '--spawn', 'y'], /--target excludes --spawn and --pid/],
    [['echo', '--port', '9', '-c', '1', '--sweep', 'colour=1,2'], /--sweep must be KEY=V1,V2,\.\.\. with KEY one of connections, size, depth, rate/],
    [['hold', '--port', '9', '-c', '1', '--sweep', 'size=1,2'], /--sweep size: --size applies to the echo, broadcast, ws-echo scenarios only/],
    [['echo', '--port', '9', '--sweep', 'connections=5,5'], /--sweep connections: give distinct values/],
    [['echo', '--port', '9', '-c', '1', '--sweep', 'depth=1,2', '--rate', '3'], /--depth and --rate exclude each other/],
    [['report'], /c1m bench report: give at least one result file/],
    [['report', 'x.json'], /c1m bench report: -o REPORT.html is required/],
    [['million', '--steps', '5,3'], /--steps must increase/],
    [['million', '--client-processes', '2000'], /--client-processes must be an integer from 1 to 1024/],
  ];
  for (const [argv, message] of cases) {
    test(`exit 2: ${argv.join(' ') || '(nothing)'}`, async () => {
      const r = await benchInProcess(argv);
      assert.equal(r.code, 2);
      assert.match(r.err, message);
      assert.match(r.err, /usage: c1m bench/);
      assert.equal(r.out, '');
    });
  }

  test('--help prints the usage on stdout, exit 0', async () => {
    const r = await benchInProcess(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /usage: c1m bench <hold\|echo\|http\|broadcast\|ws-hold\|ws-echo\|connect>/);
    assert.doesNotMatch(r.out, /not available yet|planned/);
  });

  test('refuses a non-loopback target without --yes-non-loopback (exit 2, nothing started)', async () => {
    const r = await benchInProcess(['hold', '--host', '192.0.2.1', '--port', '9', '-c', '1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /refusing to load 192\.0\.2\.1, which is not a loopback address.*--yes-non-loopback/s);
  });

  test('--source-ips needs an IPv4 loopback target', { skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const r = await benchInProcess(['hold', '--host', '192.0.2.1', '--yes-non-loopback', '--source-ips', '2', '--port', '9', '-c', '1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--source-ips applies to IPv4 loopback targets only/);
  });

  test('more connections per process than the open-file limit allows (exit 2, names c1m doctor)', { skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const r = await benchInProcess(['hold', '--port', '9', '-c', '100000000', '--processes', '1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /100000000 connections over 1 process\(es\) is 100000000 per process; the open-file limit allows \d+ .*c1m doctor/);
  });
});

describe('c1m bench layout', () => {
  before(loadHistograms);
  test('processes: auto is ceil(N / per-process limit), split evenly', () => {
    assert.deepEqual(planRun(3000, 'auto', 'auto', 1500, true).perProcess, [1500, 1500]);
    assert.deepEqual(planRun(3001, 'auto', 'auto', 1500, true).perProcess, [1001, 1000, 1000]);
    assert.deepEqual(planRun(10, 3, 'auto', 1500, true).perProcess, [4, 3, 3]);
    assert.deepEqual(planRun(19_000, 'auto', 'auto', 19_500, true).perProcess, [19_000]);
    assert.equal(planRun(1_000_000, 'auto', 'auto', 19_500, true).perProcess.length, 52);
    assert.throws(() => planRun(3000, 1, 'auto', 1500, true), /3000 per process; the open-file limit allows 1500/);
    assert.throws(() => planRun(2, 3, 'auto', 1500, true), /--processes 3 is more than the 2 connections/);
  });

  test('source addresses: auto is ceil(N / 10,000), from 127.0.0.2; none off IPv4 loopback', () => {
    assert.deepEqual(planRun(10_000, 'auto', 'auto', 19_500, true).sources, ['127.0.0.2']);
    assert.deepEqual(planRun(10_001, 'auto', 'auto', 19_500, true).sources, ['127.0.0.2', '127.0.0.3']);
    assert.equal(planRun(1_000_000, 'auto', 'auto', 19_500, true).sources.length, 100);
    assert.deepEqual(planRun(5, 'auto', 3, 19_500, true).sources, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    assert.deepEqual(planRun(5, 'auto', 'auto', 19_500, false).sources, []);
    assert.deepEqual(sourceAddresses(256).slice(252), ['127.0.0.254', '127.0.0.255', '127.0.1.0', '127.0.1.1']);
  });

  test('loopback: 127/8, ::1 and IPv4-mapped 127/8 only', () => {
    for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(ip), true, ip);
    for (const ip of ['10.0.0.1', '0.0.0.0', '192.0.2.1', '::', '::ffff:10.0.0.1', '128.0.0.1']) assert.equal(isLoopback(ip), false, ip);
  });

  test('histograms merge bucket by bucket (never averaged percentiles)', () => {
    const a = latencyHistogram(), b = latencyHistogram();
    for (let i = 0; i < 990; i++) a.recordValue(1000); // 1 µs
    for (let i = 0; i < 10; i++) b.recordValue(5_000_000); // 5 ms
    const merged = summarize(mergeHistograms([encodeHistogram(a), null, encodeHistogram(b)]))!;
    assert.equal(merged.count, 1000);
    assert.equal(merged.p50, 1);
    assert.equal(merged.p99, 1);
    assert.ok(merged.p999 >= 4990 && merged.p999 <= 5010, String(merged.p999));
    assert.ok(merged.max >= 4990 && merged.max <= 5010, String(merged.max));
    assert.equal(summarize(latencyHistogram()), null);
    assert.equal(encodeHistogram(latencyHistogram()), null);
  });
});

describe('c1m bench runs', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('echo: 200 connections x 2 processes x 2 source IPs against a spawned c1m server, --json', GUARD, async () => {
    const port = await freePort();
    const r = await runCli(['bench', 'echo', '--port', String(port), '-c', '200', '--processes', '2', '--source-ips', '2',
      '-d', '1', '--warmup', '0.3', '--depth', '4', '--size', '64', '--verify', '--json',
      '--spawn', `node bin/c1m.js serve echo --port ${port} --host 127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json;
    assert.ok(j, `last stdout line is JSON: ${r.stdout}\n${r.stderr}`);
    assert.equal(j.scenario, 'echo');
    assert.equal(j.target, 200);
    assert.equal(j.connected, 200);
    assert.equal(j.failed, 0);
    assert.deepEqual(j.errors, {});
    assert.equal(j.processes, 2);
    assert.equal(j.source_ips, 2);
    assert.equal(j.open_at_end, 200);
    assert.equal(j.closed_early, 0);
    assert.equal(j.size, 64);
    assert.equal(j.depth, 4);
    assert.equal(j.verify_errors, 0);
    assert.equal(j.unexpected_msgs, 0);
    assert.ok(j.msgs > 0 && j.msgs_per_s > 0, `msgs ${j.msgs}`);
    assert.ok(j.duration_s > 0 && j.connect_s >= 0);
    const l = j.latency!;
    assert.ok(l, 'latency measured');
    assert.equal(l.count, j.msgs);
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
    assert.ok(l.mean > 0 && l.mean <= l.max);
    assert.ok(j.server, 'server figures with --spawn');
    assert.equal(j.server.pids.length, 1);
    assert.ok(j.server.rss_kb > 0 && j.server.rss_before_kb > 0 && j.server.cpu_s >= 0);
    assert.equal(typeof j.server.bytes_per_conn, 'number');
    assert.equal(j.aborted, false);
    assert.match(r.stderr, /elapsed=\d+s connected=\d+ failed=0 .*conn\/s=\d+ msgs\/s=\d+ p99=/);
    // The spawned server was stopped.
    assert.equal(alive(j.server.pids[0]!), false, 'server process gone');
  });

  test('echo at --rate (open loop), human-readable output without --json', GUARD, async () => {
    const srv = await countingServer();
    try {
      const r = await runCli(['bench', 'echo', '--port', String(srv.port), '-c', '20', '--rate', '50', '-d', '1', '--warmup', '0.2']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^echo: 20\/20 connected in [\d.]+s/m);
      assert.match(r.stdout, /^echo 64 B at 50 msgs\/s per connection: [\d,]+ msgs\/s/m);
      assert.match(r.stdout, /^latency: p50 \S+ {2}p90 /m);
      assert.match(r.stdout, /^send lag behind schedule: p50 \S+ {2}p99 /m);
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('hold: connections spread over the source addresses, held, then all closed', GUARD, async () => {
    const srv = await countingServer();
    try {
      const r = await runCli(['bench', 'hold', '--port', String(srv.port), '-c', '300', '--processes', '2', '--source-ips', '3', '-d', '0.5', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.equal(j.scenario, 'hold');
      assert.equal(j.connected, 300);
      assert.equal(j.failed, 0);
      assert.equal(j.open_at_end, 300);
      assert.equal(j.latency, null);
      assert.equal(j.msgs, 0);
      assert.equal(j.server, null);
      assert.equal(srv.maxOpen(), 300);
      assert.deepEqual([...srv.bySource].sort(), [['127.0.0.2', 100], ['127.0.0.3', 100], ['127.0.0.4', 100]]);
      await waitFor(() => srv.open() === 0, 'every server connection closed');
      assert.deepEqual([...srv.closes], [['end', 300]]);
    } finally {
      await srv.reactor.close(1000);
    }
  });

  // The server side lives in this process: it needs 3,000 files of its own.
  const roomy = nativeAvailable && nofileLimit().connections >= 3_500;
  test('orchestration: 3,000 connections under a 2,000-file limit take 2 worker processes', { ...GUARD, skip: !roomy && 'open-file limit below 4,000 here' }, async () => {
    const srv = await countingServer();
    try {
      // Both limits at 2,000: 1,500 connections per process, so auto picks 2 processes.
      const r = await runCli([], { shell: `ulimit -n 2000 && exec node bin/c1m.js bench hold --port ${srv.port} -c 3000 -d 0.5 --json` });
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.equal(j.processes, 2);
      assert.equal(j.source_ips, 1);
      assert.equal(j.connected, 3000);
      assert.equal(j.failed, 0);
      assert.equal(j.open_at_end, 3000);
      assert.equal(srv.maxOpen(), 3000);
      assert.deepEqual([...srv.bySource], [['127.0.0.2', 3000]]);
      await waitFor(() => srv.open() === 0, 'every server connection closed', 60_000);
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('connect failures: retried with backoff, then tallied by code (exit 1 when none connected)', GUARD, async () => {
    const port = await freePort();
    const r = await runCli(['bench', 'hold', '--port', String(port), '-c', '30', '--retries', '1', '-d', '0.2', '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json.connected, 0);
    assert.equal(r.json.failed, 30);
    assert.deepEqual(r.json.errors, { ECONNREFUSED: 30 });
    assert.equal(r.json.retries, 30);
  });

  test('a worker that dies ends the run: aborted "worker_died", exit 1, no child left', GUARD, async () => {
    const srv = await countingServer();
    try {
      let children: number[] = [];
      let killed = false;
      const r = await runCli(['bench', 'hold', '--port', String(srv.port), '-c', '100', '--processes', '2', '-d', '60', '--json'], {
        onStderr(text, pid) {
          if (killed || !/connect phase done/.test(text)) return;
          killed = true;
          children = childrenOf(pid);
          process.kill(children[0]!, 'SIGKILL');
        },
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.json.aborted, 'worker_died');
      assert.match(r.stderr, /worker \d: exited early \(SIGKILL\)/);
      assert.equal(children.length, 2);
      for (const pid of children) assert.equal(alive(pid), false, `worker ${pid} gone`);
      await waitFor(() => srv.open() === 0, 'every server connection closed');
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('SIGINT: stops, still reports (aborted "signal", exit 130), and leaves no child behind', GUARD, async () => {
    const port = await freePort();
    let children: number[] = [];
    let sent = false;
    const r = await runCli(['bench', 'hold', '--port', String(port), '-c', '100', '--processes', '2', '-d', '60', '--json',
      '--spawn', `node bin/c1m.js serve echo --port ${port} --host 127.0.0.1`], {
      onStderr(text, pid) {
        if (sent || !/connect phase done/.test(text)) return;
        sent = true;
        children = childrenOf(pid);
        process.kill(pid, 'SIGINT');
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.json.aborted, 'signal');
    assert.equal(r.json.connected, 100);
    assert.equal(children.length, 3, `server + 2 workers: ${children}`);
    for (const pid of children) assert.equal(alive(pid), false, `child ${pid} gone`);
  });
});

describe('c1m bench scenarios and reports', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('http: pipelined keep-alive GETs against c1m serve http, statuses tallied', GUARD, async () => {
    const port = await freePort();
    const serveHttp = `node bin/c1m.js serve http --port ${port} --host 127.0.0.1`;
    const ok = await runCli(['bench', 'http', '--port', String(port), '-c', '20', '--depth', '4', '-d', '0.5', '--warmup', '0.2', '--json', '--spawn', serveHttp]);
    assert.equal(ok.code, 0, ok.stderr);
    const j = ok.json;
    assert.equal(j.scenario, 'http');
    assert.equal(j.connected, 20);
    assert.equal(j.open_at_end, 20);
    assert.equal(j.closed_early, 0);
    assert.equal(j.depth, 4);
    assert.equal(j.size, null);
    assert.equal(j.rate, null);
    assert.ok(j.msgs > 0 && j.msgs_per_s > 0, `requests ${j.msgs}`);
    assert.equal(j.latency!.count, j.msgs);
    assert.equal(j.unexpected_msgs, 0);
    assert.ok(j.http, 'http figures');
    assert.deepEqual(Object.keys(j.http.status), ['200']);
    assert.ok(j.http.status['200']! >= j.msgs, JSON.stringify(j.http));
    assert.equal(j.http.non_2xx, 0);
    assert.equal(j.http.parse_errors, 0);
    assert.equal(j.broadcast, null);
    assert.match(ok.stderr, /c1m bench http: 20 connections .*, GET \/ x depth 4/);

    // Every request to an unknown path is a 404: tallied, and the connections stay up.
    const port2 = await freePort();
    const nf = await runCli(['bench', 'http', '--port', String(port2), '-c', '5', '--path', '/nope', '-d', '0.3', '--warmup', '0', '--json',
      '--spawn', `node bin/c1m.js serve http --port ${port2} --host 127.0.0.1`]);
    assert.equal(nf.code, 0, nf.stderr);
    assert.deepEqual(Object.keys(nf.json.http!.status), ['404']);
    assert.ok(nf.json.http!.non_2xx > 0);
    assert.equal(nf.json.http!.non_2xx, nf.json.http!.status['404']);
    assert.equal(nf.json.open_at_end, 5);
  });

  test('broadcast: one publisher, every connection in both workers receives every publish', GUARD, async () => {
    const port = await freePort();
    const r = await runCli(['bench', 'broadcast', '--port', String(port), '-c', '60', '--processes', '2', '--rate', '40', '-d', '0.5', '--warmup', '0.2', '--json',
      '--spawn', `node bin/c1m.js serve broadcast --port ${port} --host 127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json, b = j.broadcast!;
    assert.equal(j.scenario, 'broadcast');
    assert.equal(j.connected, 60);
    assert.equal(j.processes, 2);
    assert.equal(j.rate, 40);
    assert.equal(j.size, 64);
    assert.ok(b, 'broadcast figures');
    assert.equal(b.receivers, 60);
    assert.equal(b.rate, 40);
    assert.ok(b.published > 0, `published ${b.published}`);
    assert.equal(b.complete, b.published, 'every measured publish reached all 60 connections');
    assert.equal(b.deliveries, b.published * 60);
    assert.equal(j.msgs, b.deliveries);
    assert.equal(j.latency!.count, b.deliveries);
    assert.equal(b.last_receiver!.count, b.complete);
    assert.ok(b.last_receiver!.p50 >= j.latency!.p50, 'the last receiver is never earlier than the median delivery');
    assert.ok(b.deliveries_per_s > 0);
    assert.equal(j.unexpected_msgs, 0);
  });

  test('sweep over 2 targets: one row per (connections, target), an HTML report with Chart.js inlined and no remote URL', GUARD, async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'c1m-bench-'));
    try {
      const html = join(dir, 'report.html');
      const serveEcho = (backend: string): string => `node bin/c1m.js serve echo --port ${port} --host 127.0.0.1 --backend ${backend}`;
      const r = await runCli(['bench', 'echo', '--port', String(port), '--sweep', 'connections=10,50', '-d', '0.3', '--warmup', '0.1', '--json', '--report', html,
        '--target', `native=${serveEcho('native')}`, '--target', `portable=${serveEcho('portable')}`]);
      assert.equal(r.code, 0, r.stderr);
      const doc = r.json as unknown as BenchSweepResult;
      assert.equal(doc.kind, 'sweep');
      assert.equal(doc.scenario, 'echo');
      assert.deepEqual(doc.sweep, { connections: [10, 50] });
      assert.deepEqual(doc.targets.map((t) => t.name), ['native', 'portable']);
      assert.match(doc.command, /^c1m bench echo .*--sweep connections=10,50/);
      assert.equal(doc.machine.cpus, cpus().length);
      assert.equal(doc.machine.node, process.version);
      assert.deepEqual(doc.rows.map((row) => [row.target_name, row.target, row.connected, row.failed]),
        [['native', 10, 10, 0], ['portable', 10, 10, 0], ['native', 50, 50, 0], ['portable', 50, 50, 0]]);
      for (const row of doc.rows) {
        assert.ok(row.msgs_per_s > 0 && row.latency !== null && row.server !== null, JSON.stringify(row));
        assert.equal(alive(row.server!.pids[0]!), false, 'each spawned server was stopped');
      }
      assert.notEqual(doc.rows[0]!.server!.pids[0], doc.rows[1]!.server!.pids[0], 'a fresh server per run');

      const page = readFileSync(html, 'utf8');
      assertSelfContained(page);
      const data = JSON.parse(/<script id="c1m-bench-data" type="application\/json">(.*?)<\/script>/s.exec(page)![1]!) as BenchSweepResult[];
      assert.deepEqual(data, [doc]);
      assert.match(page, /Throughput vs connections/);
      assert.match(page, /Server memory per connection vs connections/);

      // The same page from the saved JSON, plus a single-run result, with `c1m bench report`.
      const saved = join(dir, 'sweep.json'), single = join(dir, 'one-run.json'), again = join(dir, 'again.html');
      writeFileSync(saved, `${r.stdout}`);
      const { target_name: _name, ...one } = doc.rows[0]!;
      writeFileSync(single, JSON.stringify(one));
      const rep = await runCli(['bench', 'report', saved, single, '-o', again]);
      assert.equal(rep.code, 0, rep.stderr);
      const page2 = readFileSync(again, 'utf8');
      assertSelfContained(page2);
      assert.match(page2, /<td>one-run<\/td>/, 'a single result is labelled by its file name');
      const bad = await runCli(['bench', 'report', html, '-o', join(dir, 'x.html')]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /no JSON result in it|not a c1m bench result/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('c1m bench WebSocket scenarios', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('ws-echo: 200 WebSockets x 2 processes against a spawned c1m serve ws-echo, --verify, --json', GUARD, async () => {
    const port = await freePort();
    const r = await runCli(['bench', 'ws-echo', '--port', String(port), '-c', '200', '--processes', '2', '-d', '1', '--warmup', '0.3',
      '--depth', '2', '--size', '100', '--verify', '--json', '--spawn', `node bin/c1m.js serve ws-echo --port ${port} --host 127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json;
    assert.ok(j, `last stdout line is JSON: ${r.stdout}\n${r.stderr}`);
    assert.equal(j.scenario, 'ws-echo');
    assert.equal(j.processes, 2);
    assert.equal(j.connected, 200);
    assert.equal(j.failed, 0);
    assert.deepEqual(j.errors, {});
    assert.deepEqual(j.ws, { upgraded: 200, deflated: 0, handshake_failures: {}, protocol_errors: {}, close_codes: {} });
    assert.equal(j.open_at_end, 200);
    assert.equal(j.closed_early, 0);
    assert.equal(j.size, 100);
    assert.equal(j.depth, 2);
    assert.equal(j.rate, null);
    assert.equal(j.verify_errors, 0);
    assert.equal(j.unexpected_msgs, 0);
    assert.ok(j.msgs > 0 && j.msgs_per_s > 0, `msgs ${j.msgs}`);
    assert.ok(Math.abs(j.payload_bytes_per_s - j.msgs_per_s * 100) <= 50, 'payload bytes: msgs/s x size');
    const l = j.latency!;
    assert.ok(l, 'latency measured');
    assert.equal(l.count, j.msgs);
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
    assert.equal(j.http, null);
    assert.equal(j.broadcast, null);
    assert.match(r.stderr, /c1m bench ws-echo: 200 connections .*, upgrade GET \/, 100 B binary messages, depth 2/);
    assert.match(r.stderr, /elapsed=\d+s connected=\d+ failed=0 .*msgs\/s=\d+ p99=/);
  });

  test('ws-echo --deflate: every WebSocket agrees permessage-deflate with c1m serve ws-echo --deflate, and none without it', GUARD, async () => {
    for (const serverDeflate of [true, false]) {
      const port = await freePort();
      const r = await runCli(['bench', 'ws-echo', '--port', String(port), '-c', '20', '-d', '0.5', '--warmup', '0',
        '--size', '300', '--verify', '--deflate', '--json', '--spawn', `node bin/c1m.js serve ws-echo --port ${port} --host 127.0.0.1${serverDeflate ? ' --deflate' : ''}`]);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.ok(j, `last stdout line is JSON: ${r.stdout}\n${r.stderr}`);
      assert.equal(j.deflate, true);
      assert.deepEqual(j.ws, { upgraded: 20, deflated: serverDeflate ? 20 : 0, handshake_failures: {}, protocol_errors: {}, close_codes: {} });
      assert.equal(j.verify_errors, 0, 'compressed echoes inflate to what was sent');
      assert.ok(j.msgs > 0, `msgs ${j.msgs}`);
      assert.match(r.stderr, /upgrade GET \/ \(deflate offered\)/);
    }
  });

  test('ws-hold: --path reaches the server, every connection upgraded and held, then closed with 1001', GUARD, async () => {
    const srv = await wsCountingServer();
    try {
      const r = await runCli(['bench', 'ws-hold', '--port', String(srv.port), '-c', '200', '--processes', '2', '--path', '/chat?room=1', '-d', '0.5', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.equal(j.scenario, 'ws-hold');
      assert.equal(j.connected, 200);
      assert.equal(j.failed, 0);
      assert.deepEqual(j.ws, { upgraded: 200, deflated: 0, handshake_failures: {}, protocol_errors: {}, close_codes: {} });
      assert.equal(j.open_at_end, 200);
      assert.equal(j.msgs, 0);
      assert.equal(j.latency, null);
      assert.equal(j.size, null);
      assert.deepEqual([...srv.targets], [['/chat?room=1', 200]]);
      // The workers stop with a close handshake (1001), not a bare FIN.
      await waitFor(() => srv.open() === 0 && srv.reactor.stats.connections === 0, 'every server connection closed');
      assert.deepEqual([...srv.codes], [[1001, 200]]);
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('ws-hold: an upgrade refused with 403 fails every connect with ERR_C1M_WS_HANDSHAKE_STATUS (exit 1)', GUARD, async () => {
    const srv = await wsCountingServer();
    try {
      const r = await runCli(['bench', 'ws-hold', '--port', String(srv.port), '-c', '20', '--path', '/deny', '-d', '0.2', '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.json.connected, 0);
      assert.equal(r.json.failed, 20);
      assert.equal(r.json.retries, 0, 'a failed handshake is not retried');
      assert.deepEqual(r.json.errors, { ERR_C1M_WS_HANDSHAKE_STATUS: 20 });
      assert.deepEqual(r.json.ws, { upgraded: 0, deflated: 0, handshake_failures: { ERR_C1M_WS_HANDSHAKE_STATUS: 20 }, protocol_errors: {}, close_codes: {} });
      assert.deepEqual([...srv.targets], [['/deny', 20]]);
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('ws-hold against the TCP echo server: the request comes back instead of a 101, every handshake fails, tallied by code', GUARD, async () => {
    const port = await freePort();
    const r = await runCli(['bench', 'ws-hold', '--port', String(port), '-c', '200', '--processes', '2', '-d', '0.2', '--json',
      '--spawn', `node bin/c1m.js serve echo --port ${port} --host 127.0.0.1`]);
    assert.equal(r.code, 1, r.stderr);
    const j = r.json;
    assert.equal(j.connected, 0);
    assert.equal(j.failed, 200);
    assert.equal(j.open_at_end, 0);
    assert.deepEqual(j.errors, { ERR_C1M_WS_HANDSHAKE_MALFORMED: 200 });
    assert.deepEqual(j.ws!.handshake_failures, { ERR_C1M_WS_HANDSHAKE_MALFORMED: 200 });
    assert.equal(j.ws!.upgraded, 0);
  });

  test('ws-echo at --rate (open loop), human-readable output', GUARD, async () => {
    const srv = await wsCountingServer();
    try {
      const r = await runCli(['bench', 'ws-echo', '--port', String(srv.port), '-c', '20', '--rate', '50', '--size', '32', '-d', '1', '--warmup', '0.2', '--verify']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ws-echo: 20\/20 connected in [\d.]+s/m);
      assert.match(r.stdout, /^ws-echo 32 B at 50 msgs\/s per connection: [\d,]+ msgs\/s/m);
      assert.match(r.stdout, /^websocket: 20 upgraded$/m);
      assert.match(r.stdout, /^latency: p50 \S+ {2}p90 /m);
      assert.match(r.stdout, /^send lag behind schedule: p50 /m);
      assert.match(r.stdout, /^verify errors: 0$/m);
    } finally {
      await srv.reactor.close(1000);
    }
  });
});

/** The report carries Chart.js itself, loads nothing from elsewhere, and forbids fetching. */
function assertSelfContained(page: string): void {
  const chartJs = readFileSync(fileURLToPath(new URL('../../../node_modules/chart.js/dist/chart.umd.min.js', import.meta.url)), 'utf8');
  assert.ok(page.includes(`<script>${chartJs}</script>`), 'Chart.js inlined whole');
  assert.doesNotMatch(page, /\b(?:src|href)\s*=\s*["']?(?:[a-z]+:)?\/\//i, 'no src/href to another host');
  // Around Chart.js (whose source has its own strings): no stylesheet, import or url() either.
  assert.doesNotMatch(page.replace(chartJs, ''), /<link\b|@import|url\(|<iframe|<img/i);
  assert.match(page, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
  assert.match(page, /<canvas id="chart-0">/);
}


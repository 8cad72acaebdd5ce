/**
 * `c1m bench udp` end to end at small scale: the CLI runs as a child process (it forks its own
 * workers) against `c1m serve udp-echo` (a child too, with its metrics port) or a tiny server in
 * this process that drops every other datagram. Argument errors run in-process. No timing
 * thresholds: only counts and shapes.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { parseUdpBenchArgs, type UdpBenchResult } from '../../src/cli/bench-udp.js';
import { UsageError } from '../../src/cli/bench-layout.js';
import { udp } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, waitFor } from '../helpers/net.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/c1m.js', import.meta.url));

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: UdpBenchResult;
}

function runBench(args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, 'bench', 'udp', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const guard = setTimeout(() => child.kill('SIGKILL'), 100_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(guard);
      let json = undefined as unknown as UdpBenchResult;
      try {
        json = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as UdpBenchResult;
      } catch {
        // not JSON: the assertions on `json` report it with stderr
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

const started: ChildProcess[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `c1m serve udp-echo` on free ports; resolves with its UDP and metrics ports. */
async function serveUdpEcho(extra: string[] = [], app = 'udp-echo'): Promise<{ child: ChildProcess; port: number; metricsPort: number }> {
  const child = spawn(process.execPath, [CLI, 'serve', app, '--port', '0', '--host', '127.0.0.1', '--metrics-port', '0', ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  await waitFor(() => /metrics on http:\/\/[^:]+:\d+/.test(text) || child.exitCode !== null, 'c1m serve udp-echo listening');
  const port = /listening on [^ ]*:(\d+)/.exec(text)?.[1];
  const metricsPort = /metrics on http:\/\/[^:]+:(\d+)/.exec(text)?.[1];
  assert.ok(port && metricsPort, `serve output: ${text}`);
  return { child, port: Number(port), metricsPort: Number(metricsPort) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

describe('c1m bench udp: options', () => {
  const bad: [string[], RegExp][] = [
    [[], /--port is required/],
    [['--port', '9', '--mode', 'storm'], /--mode must be echo or flood, got "storm"/],
    [['--port', '9', '--mode', 'flood', '--depth', '4'], /--depth applies to --mode echo only/],
    [['--port', '9', '--rate', '100'], /--rate applies to --mode flood only/],
    [['--port', '9', '--metrics-port', '9100'], /--metrics-port applies to --mode flood only/],
    [['--port', '9', '--mode', 'flood', '--warmup', '1'], /--warmup applies to --mode echo only/],
    [['--port', '9', '--size', '4'], /--size must be an integer from 8 to 65507, got "4"/],
    [['--port', '9', '--mode', 'flood', '--size', '65508'], /--size must be an integer from 0 to 65507/],
    [['--port', '9', '-c', '2', '--processes', '3'], /--processes 3 needs at least as many sockets \(-c\), got 2/],
    [['--port', '9', '--host', 'localhost'], /--host must be an IP address, got "localhost"/],
    [['--port', '9', '--host', '10.1.2.3'], /refusing to load 10\.1\.2\.3/],
    [['--port', '9', '--mode', 'flood', '--rate', '0'], /--rate must be a number of datagrams\/s above 0/],
    [['--port', '9', '--depth', '0'], /--depth must be an integer from 1 to 4096/],
    [['--port', '9', '--timeout', 'soon'], /--timeout must be a number of seconds/],
    [['--port', '9', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, re] of bad) {
    test(`rejects ${args.join(' ') || '(nothing)'}`, () => {
      assert.throws(() => parseUdpBenchArgs(args), (e: unknown) => e instanceof UsageError && re.test(e.message));
    });
  }

  test('defaults', () => {
    const o = parseUdpBenchArgs(['--port', '9']);
    assert.ok(o !== 'help');
    assert.deepEqual({ mode: o.mode, sockets: o.sockets, processes: o.processes, size: o.size, depth: o.depth, rate: o.rate, warmupS: o.warmupS, durationS: o.durationS, timeoutS: o.timeoutS },
      { mode: 'echo', sockets: 1, processes: 1, size: 64, depth: 1, rate: 0, warmupS: 1, durationS: 10, timeoutS: 1 });
    const f = parseUdpBenchArgs(['--port', '9', '--mode', 'flood', '--size', '0']);
    assert.ok(f !== 'help');
    assert.equal(f.warmupS, 0);
    assert.equal(f.size, 0);
  });

  test('a usage error exits 2 with the message and the usage', async () => {
    const r = await runBench(['--port', '9', '--mode', 'flood', '--depth', '2']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /c1m bench udp: --depth applies to --mode echo only/);
    assert.match(r.stderr, /usage: c1m bench udp/);
  });
});

describe('c1m bench udp: runs', { skip: nativeAvailable ? false : 'native backend unavailable' }, () => {
  test('echo against c1m serve udp-echo: every datagram answered, counts add up, JSON shape', GUARD, async () => {
    const srv = await serveUdpEcho();
    try {
      const r = await runBench(['--port', String(srv.port), '-c', '4', '--depth', '2', '--processes', '2', '-d', '1', '--warmup', '0.2', '--timeout', '5', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.deepEqual(Object.keys(j).sort(), ['client', 'depth', 'drops', 'duration_s', 'errors', 'host', 'latency', 'loss_ratio', 'lost', 'mode', 'note',
        'port', 'processes', 'rate', 'received', 'received_from', 'received_per_s', 'scenario', 'sent', 'sent_per_s', 'size', 'sockets', 'stale', 'tool', 'warmup_s'].sort());
      assert.equal(j.scenario, 'udp');
      assert.equal(j.mode, 'echo');
      assert.equal(j.processes, 2);
      assert.equal(j.sockets, 4);
      assert.equal(j.received_from, 'echoes');
      assert.ok(j.received! > 0);
      // Loopback at this load: nothing lost; what was sent is answered or still in flight (at most sockets x depth).
      assert.equal(j.lost, 0);
      assert.equal(j.loss_ratio, 0);
      assert.equal(j.stale, 0);
      assert.ok(j.sent >= j.received! && j.sent - j.received! <= 4 * 2, `sent ${j.sent} received ${j.received}`);
      assert.equal(j.latency!.count, j.received);
      assert.ok(j.latency!.p50 <= j.latency!.p99 && j.latency!.p99 <= j.latency!.max);
      assert.deepEqual(j.errors, {});
    } finally {
      await stop(srv.child);
    }
  });

  test('echo against a server that drops every other datagram: the loss is counted, flows keep going', GUARD, async () => {
    let seen = 0, answered = 0;
    const server = await udp({
      onMessage(sock, data, from) {
        if (seen++ % 2 === 1) return;
        answered++;
        sock.send(from, data);
      },
    }, { port: 0, host: '127.0.0.1' });
    try {
      const r = await runBench(['--port', String(server.socket.address.port), '-c', '2', '--depth', '4', '--timeout', '0.3', '-d', '1.5', '--warmup', '0', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      const inFlight = 2 * 4;
      assert.ok(j.received! > 0 && j.lost! > 0, `received ${j.received} lost ${j.lost}`);
      // Every datagram sent is answered, lost, or still in flight (or within its timeout) at the end.
      assert.ok(j.sent - j.received! - j.lost! >= 0 && j.sent - j.received! - j.lost! <= inFlight, JSON.stringify(j));
      // Half are dropped: the losses match the answers up to what was in flight at the end.
      assert.ok(Math.abs(j.lost! - j.received!) <= 2 * inFlight, `received ${j.received} lost ${j.lost}`);
      assert.ok(j.received! <= answered && seen >= j.sent - inFlight);
      assert.ok(j.loss_ratio! > 0.3 && j.loss_ratio! < 0.7, String(j.loss_ratio));
    } finally {
      await server.close();
    }
  });

  test('flood against c1m serve udp-echo --processes 2: the received count comes from the server metrics', GUARD, async () => {
    const srv = await serveUdpEcho(['--processes', '2']);
    try {
      const r = await runBench(['--port', String(srv.port), '--mode', 'flood', '-c', '8', '--processes', '2', '--rate', '4000', '-d', '1',
        '--metrics-port', String(srv.metricsPort), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = r.json;
      assert.equal(j.mode, 'flood');
      assert.equal(j.received_from, 'server-metrics');
      assert.equal(j.rate, 4000);
      assert.equal(j.depth, null);
      assert.equal(j.latency, null);
      assert.ok(j.sent > 0 && j.sent <= 4000 * j.duration_s + 8, `sent ${j.sent}`);
      // Low rate on loopback: the two server processes together received every datagram.
      assert.equal(j.received, j.sent);
      assert.equal(j.lost, 0);
      assert.equal(j.note, null);
    } finally {
      await stop(srv.child);
    }
  });

  test('flood into c1m serve udp-sink: every datagram counted by the sink, none comes back', GUARD, async () => {
    const srv = await serveUdpEcho([], 'udp-sink');
    try {
      const r = await runBench(['--port', String(srv.port), '--mode', 'flood', '-c', '2', '--rate', '3000', '-d', '0.5', '--size', '0',
        '--metrics-port', String(srv.metricsPort), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.json.sent > 0);
      assert.equal(r.json.received, r.json.sent);
      assert.equal(r.json.stale, 0);
      assert.equal(r.json.size, 0);
    } finally {
      await stop(srv.child);
    }
  });

  test('flood without --metrics-port reports sent only and says why', GUARD, async () => {
    const srv = await serveUdpEcho();
    try {
      const r = await runBench(['--port', String(srv.port), '--mode', 'flood', '--rate', '1000', '-d', '0.3', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.json.sent > 0);
      assert.equal(r.json.received, null);
      assert.equal(r.json.lost, null);
      assert.equal(r.json.received_from, null);
      assert.match(r.json.note!, /server received unknown: give --metrics-port/);
    } finally {
      await stop(srv.child);
    }
  });
});

/**
 * `c1m serve ./handler.js`: the CLI runs any module `serve()` accepts, in one reactor, in
 * worker threads and in prefork processes, passes --handler-options to createHandler, and
 * shuts down cleanly on SIGTERM. Each case spawns the CLI of this build (src/cli/run.js).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
// Spawned by path: these type-only imports make tsc emit them into build-test.
import type {} from '../../src/cli/run.js';
import type {} from '../fixtures/greet-echo.js';
import type {} from '../fixtures/no-handler.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, RawClient, firstDiff, payload, rawClient, sleep, waitFor, within } from '../helpers/net.js';

const runJs = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));
const greetEcho = fileURLToPath(new URL('../fixtures/greet-echo.js', import.meta.url));
const noHandler = fileURLToPath(new URL('../fixtures/no-handler.js', import.meta.url));

interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [runJs, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const c: Cli = {
    child, stdout: '', stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (c.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  return c;
}

/** Wait for the "listening on" line; returns the port it names. */
async function listening(c: Cli, mode: string): Promise<number> {
  let exited = false;
  void c.exited.then(() => (exited = true));
  await waitFor(() => /listening on/.test(c.stdout) || exited, 'the listening line', 60_000);
  const m = /^c1m: (\S+) listening on 127\.0\.0\.1:(\d+) \(backend (\w+), mode (\w+),/m.exec(c.stdout);
  assert.ok(m, `stdout ${JSON.stringify(c.stdout)}, stderr ${JSON.stringify(c.stderr)}`);
  assert.equal(m[4], mode);
  return Number(m[2]);
}

async function greetedEcho(port: number, greeting: string, i: number): Promise<RawClient> {
  const c = await rawClient(port);
  const hello = Buffer.from(`${greeting}\n`);
  await c.waitBytes(hello.length);
  assert.equal(c.text(), hello.toString());
  const data = payload(5000 + i, i);
  await c.send(data);
  await c.waitBytes(hello.length + data.length);
  assert.equal(firstDiff(c.bytes().subarray(hello.length), data), -1);
  return c;
}

const modes = [
  { mode: 'single', args: [] as string[], native: false },
  { mode: 'threads', args: ['--threads', '2'], native: true },
  { mode: 'processes', args: ['--processes', '2'], native: true },
];

describe('c1m serve ./handler.js', () => {
  for (const m of modes) {
    test(`${m.mode}: serves the module with --handler-options and exits cleanly on SIGTERM`, { ...GUARD, skip: m.native && !nativeAvailable && 'native backend unavailable' }, async () => {
      const greeting = `hi from ${m.mode}`;
      const c = cli([greetEcho, '--port', '0', '--host', HOST, '--handler-options', JSON.stringify({ greeting }), ...m.args]);
      const clients: RawClient[] = [];
      try {
        const port = await listening(c, m.mode);
        for (let i = 0; i < 6; i++) clients.push(await greetedEcho(port, greeting, i));
        c.child.kill('SIGTERM');
        const exit = await within(c.exited, 'the CLI to exit', 60_000);
        assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${c.stderr}`);
        assert.match(c.stderr, /SIGTERM: shutting down gracefully/);
        await Promise.all(clients.map((cl) => cl.waitClosed()));
        // Nothing of it (no worker process) still holds the port.
        const after = new RawClient(port);
        await assert.rejects(within(after.connected, 'connect after exit'), { code: 'ECONNREFUSED' });
      } finally {
        for (const cl of clients) cl.destroy();
        c.child.kill('SIGKILL');
      }
    });
  }

  test('a module that does not exist: a clear error, exit code 2', GUARD, async () => {
    const c = cli(['./no/such/handler.js', '--port', '0', '--host', HOST]);
    assert.deepEqual(await within(c.exited, 'exit'), { code: 2, signal: null });
    assert.match(c.stderr, /"\.\/no\/such\/handler\.js" is neither a built-in app \(echo, ws-echo, http, broadcast, udp-echo, udp-sink, gateway\) nor a handler module file \(.*no\/such\/handler\.js does not exist\)/);
    assert.equal(c.stdout, '');
  });

  test('usage errors in the workers\' and flags\' choice: exit code 2 with the reason, no usage dump', GUARD, async () => {
    const cases: [string[], RegExp][] = [
      [['echo', '--threads', '0'], /--threads must be at least 1/],
      [['echo', '--threads', '2', '--processes', '2'], /--threads and --processes are two modes: choose one/],
      [['echo', '--threads', '2', '--balance', 'bogus'], /--balance is round-robin, least-connections or hash, not "bogus"/],
      [['echo', '--processes', '2', '--balance', 'hash'], /--balance applies to --threads/],
      [['udp-echo', '--idle-timeout', '5'], /--idle-timeout applies to TCP servers; udp-echo is UDP/],
      [['udp-sink', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], /--tls-cert applies to TCP servers; udp-sink is UDP/],
      [['./src/index.ts'], /is TypeScript, which this Node .* does not run: compile it/],
    ];
    for (const [args, message] of cases) {
      const c = cli([...args, '--port', '0', '--host', HOST]);
      assert.deepEqual(await within(c.exited, 'exit'), { code: 2, signal: null }, args.join(' '));
      assert.match(c.stderr, message, args.join(' '));
      assert.ok(!/--high-water-mark/.test(c.stderr), 'not the whole usage');
    }
  });

  for (const m of modes) {
    test(`${m.mode}: a module that exports no handler: a clear error, exit code 1`, { ...GUARD, skip: m.native && !nativeAvailable && 'native backend unavailable' }, async () => {
      const c = cli([noHandler, '--port', '0', '--host', HOST, ...m.args]);
      assert.deepEqual(await within(c.exited, 'exit', 60_000), { code: 1, signal: null });
      assert.match(c.stderr, /c1m serve: handler module file:.*no-handler\.js: it exports neither createHandler\(options\) nor a default handler object/);
      assert.equal(c.stdout, '');
    });
  }

  test('--node-flags: every --processes worker runs with them; refused without --processes or for a non-flag', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const c = cli([greetEcho, '--port', '0', '--host', HOST, '--processes', '2', '--node-flags', ' --max-opt=1  --stack-size=900 ']);
    try {
      const port = await listening(c, 'processes');
      (await greetedEcho(port, 'hello', 0)).destroy();
      const workers = readFileSync(`/proc/${c.child.pid}/task/${c.child.pid}/children`, 'latin1').trim().split(/\s+/);
      assert.equal(workers.length, 2, `children ${workers}`);
      for (const pid of workers) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        assert.ok(argv.includes('--max-opt=1') && argv.includes('--stack-size=900'), argv.join(' '));
      }
      c.child.kill('SIGTERM');
      assert.deepEqual(await within(c.exited, 'the CLI to exit', 60_000), { code: 0, signal: null }, `stderr: ${c.stderr}`);
    } finally {
      c.child.kill('SIGKILL');
    }
    for (const args of [['--node-flags=--max-opt=1'], ['--processes', '2', '--node-flags=--max-opt=1 nope']]) {
      const bad = cli([greetEcho, '--port', '0', ...args]);
      assert.deepEqual(await within(bad.exited, 'exit'), { code: 2, signal: null });
      assert.match(bad.stderr, /--node-flags takes --flag words and applies to --processes workers/);
    }
  });

  test('--defer-accept: off for a module (a greeting goes out at once); with it a silent client waits, greeted once it speaks', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    for (const defer of [undefined, '5']) {
      const c = cli([greetEcho, '--port', '0', '--host', '127.0.0.1', '--backend', 'native', '--handler-options', '{"greeting":"hi"}', ...(defer ? ['--defer-accept', defer] : [])]);
      try {
        const port = await listening(c, 'single');
        const client = await rawClient(port);
        if (defer === undefined) {
          await client.waitBytes(3); // greeted without a word: no deferral by default for a module
        } else {
          await sleep(300);
          assert.equal(client.length, 0, 'not accepted, so not greeted, while silent');
          await client.send('x\n');
          await client.waitBytes(5); // then the greeting and the echo
        }
        assert.equal(client.text().slice(0, 3), 'hi\n');
        client.socket.destroy();
      } finally {
        c.child.kill('SIGKILL');
      }
    }
    const bad = cli([greetEcho, '--port', '0', '--defer-accept', 'soon']);
    assert.deepEqual(await within(bad.exited, 'exit'), { code: 2, signal: null });
    assert.match(bad.stderr, /--defer-accept must be a non-negative integer/);
  });

  test('--tcp-keepalive IDLE[,INTERVAL[,COUNT]]: every worker\'s connections are probed; bad values refused', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const c = cli([greetEcho, '--port', '0', '--host', '127.0.0.1', '--processes', '2', '--tcp-keepalive', '600,20,4']);
    try {
      const port = await listening(c, 'processes');
      const clients = await Promise.all(Array.from({ length: 4 }, () => rawClient(port)));
      for (const client of clients) await client.waitBytes(1); // greeted: accepted by a worker
      // Each socket shows keep-alive's timer once its greeting is acknowledged ('on' until then).
      let out = '';
      const timers = (): (string | undefined)[] => {
        const ss = spawnSync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
        assert.equal(ss.status, 0, `ss (iproute2): ${ss.stderr}`);
        out = ss.stdout;
        return ss.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => /timer:\(([^,]+),/.exec(l)?.[1]);
      };
      await waitFor(() => { const t = timers(); return t.length === 4 && t.every((x) => x === 'keepalive'); }, 'keep-alive timers', 10_000)
        .catch(() => assert.fail(`ss: ${out}`));
      for (const client of clients) client.socket.destroy();
    } finally {
      c.child.kill('SIGKILL');
    }
    for (const [value, message] of [['5,x', /--tcp-keepalive takes IDLE\[,INTERVAL\[,COUNT\]\]/], ['1,2,3,4', /--tcp-keepalive takes/], ['0', /tcpKeepAlive\.idle/]] as const) {
      const bad = cli([greetEcho, '--port', '0', '--tcp-keepalive', value]);
      const exit = await within(bad.exited, 'exit');
      assert.notEqual(exit.code, 0, value);
      assert.match(bad.stderr, message);
    }
  });

  test('bad --handler-options and --help', GUARD, async () => {
    const bad = cli([greetEcho, '--port', '0', '--handler-options', '{nope']);
    assert.deepEqual(await within(bad.exited, 'exit'), { code: 2, signal: null });
    assert.match(bad.stderr, /--handler-options is not JSON/);
    const help = cli(['--help']);
    assert.deepEqual(await within(help.exited, 'exit'), { code: 0, signal: null });
    assert.match(help.stdout, /\.\/handler\.js +your handler module/);
    assert.match(help.stdout, /--handler-options JSON/);
  });
});

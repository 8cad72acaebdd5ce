/**
 * The engine option `pollInterval` (`createReactor`, `serve`, `c1m serve --poll-interval`):
 * each reactor polls from a timer every `pollInterval` ms from the moment it is made, as
 * `Reactor.setPollInterval` does (its own behaviour is tested in poll-interval.test.ts). What
 * must hold: the option reaches every reactor (this thread's, each prefork worker's), bad values
 * are refused before anything starts, and the portable backend, which has no such poll, ignores
 * it. A 60 s interval makes the proof: nothing is accepted until the first timer poll.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
// Spawned by path: these type-only imports make tsc emit them into build-test.
import type {} from '../../src/cli/run.js';
import type {} from '../fixtures/greet-echo.js';
import { resolveOptions } from '../../src/core/options.js';
import { createReactor } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, sleep, waitFor } from '../helpers/net.js';
import { childrenOf, serveCli } from '../helpers/proc.js';

const runJs = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));
const greetEcho = fileURLToPath(new URL('../fixtures/greet-echo.js', import.meta.url));
const SKIP = { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' };

/** A client that keeps what it reads. */
function client(port: number): { sock: Socket; got: () => string } {
  const sock = connect({ port, host: HOST });
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  sock.on('error', () => {});
  return { sock, got: () => got };
}


/** `c1m serve greet-echo --processes 2 ...args` until `body` is done with 8 clients of it; everything killed after. */
async function withServer(args: string[], body: (clients: ReturnType<typeof client>[]) => Promise<void>): Promise<void> {
  const s = serveCli(runJs, greetEcho, ['--processes', '2', ...args]);
  const clients: ReturnType<typeof client>[] = [];
  try {
    await waitFor(() => /listening on/.test(s.out()), 'the listening line', 60_000);
    const port = Number(/listening on [\d.]+:(\d+)/.exec(s.out())![1]);
    // SO_REUSEPORT hashes each connection to one worker: 8 reach both with near certainty.
    for (let i = 0; i < 8; i++) clients.push(client(port));
    await body(clients);
  } finally {
    for (const c of clients) c.sock.destroy();
    s.child.kill('SIGKILL');
    for (const p of childrenOf(s.child.pid!)) process.kill(p, 'SIGKILL');
  }
}

describe('pollInterval (engine option)', () => {
  test('createReactor({ pollInterval }): the reactor polls from a timer from the start; setPollInterval(0) takes what waited', SKIP, async () => {
    let opened = 0;
    const reactor = createReactor({ onOpen: () => void opened++ }, { backend: 'native', pollInterval: 60_000 });
    const { port } = await reactor.listen({ port: 0, host: HOST });
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 10; i++) socks.push(client(port).sock);
      await Promise.all(socks.map((s) => new Promise((res) => s.once('connect', res)))); // the kernel's handshake
      await sleep(300);
      assert.equal(opened, 0, 'nothing accepted before the first timer poll');
      assert.equal(reactor.stats.batches, 0, 'no crossing before the first timer poll');
      reactor.setPollInterval!(0);
      await waitFor(() => opened === 10, `10 accepted (have ${opened})`);
    } finally {
      for (const s of socks) s.destroy();
      await reactor.close(5000);
    }
  });

  test('bad values are refused: ERR_C1M_INVALID_OPTION', GUARD, () => {
    for (const bad of [-1, 1.5, 60_001, '50' as unknown as number]) {
      assert.throws(() => resolveOptions({ pollInterval: bad }), { code: 'ERR_C1M_INVALID_OPTION', message: /pollInterval/ }, String(bad));
    }
    assert.equal(resolveOptions({}).pollInterval, 0, 'default: wake per event');
    assert.equal(resolveOptions({ pollInterval: 60_000 }).pollInterval, 60_000);
  });

  test('the portable backend ignores it: connections are served at once', GUARD, async () => {
    const reactor = createReactor({ onData: (c, d) => void c.write(d) }, { backend: 'portable', pollInterval: 60_000 });
    const { port } = await reactor.listen({ port: 0, host: HOST });
    const c = client(port);
    try {
      c.sock.write('ping');
      await waitFor(() => c.got() === 'ping', 'the echo');
    } finally {
      c.sock.destroy();
      await reactor.close(5000);
    }
  });

  test('c1m serve --processes 2 --poll-interval 60000: no worker accepts before its first timer poll', SKIP, async () => {
    await withServer(['--poll-interval', '60000'], async (clients) => {
      await sleep(500);
      assert.deepEqual(clients.map((c) => c.got()), Array(8).fill(''), 'no greeting from either worker');
    });
  });

  test('c1m serve --processes 2 --poll-interval 20: greetings and echoes flow', SKIP, async () => {
    await withServer(['--poll-interval', '20'], async (clients) => {
      await waitFor(() => clients.every((c) => c.got() === 'hello\n'), 'every greeting');
      for (const c of clients) c.sock.write('x');
      await waitFor(() => clients.every((c) => c.got() === 'hello\nx'), 'every echo');
    });
  });

  test('c1m serve --poll-interval: a bad value exits 2 or 1 with the option named', GUARD, () => {
    const neg = spawnSync(process.execPath, [runJs, 'serve', greetEcho, '--port', '0', '--poll-interval', '-5'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(neg.status, 2, neg.stderr);
    assert.match(neg.stderr, /--poll-interval/);
    const big = spawnSync(process.execPath, [runJs, 'serve', greetEcho, '--port', '0', '--poll-interval', '60001'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(big.status, 1, big.stderr);
    assert.match(big.stderr, /pollInterval/);
  });
});

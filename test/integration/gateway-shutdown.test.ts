/**
 * A gateway's graceful shutdown spread over time (`shutdownSpread`, `c1m serve gateway
 * --shutdown-spread`): every WebSocket gets 1001, not all at once; until its turn a client
 * still receives what is published (through the admin port, which stays up); the CLI's
 * `--grace` grows with the spread and a shorter one is refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { listen } from '../../src/index.js';
import { createGateway } from '../../src/apps/gateway/index.js';
import { backends, nativeAvailable } from '../helpers/backends.js';
import { GatewayClient, cli, freePort, gatewayClient, listening, publishHttp } from '../helpers/gateway.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';

const runJs = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

const N = 20;

for (const backend of backends) {
  describe(`gateway shutdownSpread (${backend})`, () => {
    test('closes are spread: a client waiting for its turn still gets publishes, then 1001', GUARD, async () => {
      const admin = await freePort();
      const gw = await createGateway({ noAuth: true, pingInterval: 0, adminPort: admin, shutdownSpread: 2000 });
      const server = await listen(gw, { port: 0, host: HOST, backend });
      const clients: GatewayClient[] = [];
      try {
        for (let i = 0; i < N; i++) clients.push(await gatewayClient(server.address.port, '?topics=t'));
        const closing = server.close(20_000);
        await waitFor(() => clients.some((c) => c.closed !== undefined), 'the first close');
        const openAtFirst = clients.filter((c) => c.closed === undefined).length;
        assert.ok(openAtFirst > 0, 'when the first client was closed, others were still open');
        const pub = await publishHttp(admin, 't', 'late');
        assert.equal(pub.status, 200, JSON.stringify(pub.body));
        const delivered = pub.body.delivered as number;
        await waitFor(() => clients.every((c) => c.closed !== undefined), 'every client closed', 20_000);
        for (const c of clients) assert.equal(c.closed!.code, 1001);
        // Each subscriber the publish was queued for had it before its close frame.
        const got = clients.filter((c) => c.deliveries('t').some((m) => m.data === 'late')).length;
        assert.equal(got, delivered);
        assert.ok(delivered >= 1, 'the publish reached the clients still waiting');
        await within(closing, 'the shutdown to finish', 20_000);
      } finally {
        for (const c of clients) c.close();
        await server.close(1000);
      }
    });
  });
}

test('c1m serve gateway --shutdown-spread: SIGTERM spreads the 1001s and exits 0', GUARD, async () => {
  const c = cli(['gateway', '--no-auth', '--port', '0', '--host', HOST, '--ping-interval', '0', '--shutdown-spread', '1500']);
  const clients: GatewayClient[] = [];
  try {
    const port = await listening(c);
    for (let i = 0; i < 10; i++) clients.push(await gatewayClient(port, '?topics=t'));
    c.child.kill('SIGTERM');
    await waitFor(() => clients.some((x) => x.closed !== undefined), 'the first close');
    assert.ok(clients.some((x) => x.closed === undefined), 'when the first client was closed, others were still open');
    const { code } = await within(c.exited, 'the gateway to exit', 30_000);
    assert.equal(code, 0, c.stderr);
    for (const x of clients) assert.equal((await x.waitClosed()).code, 1001);
  } finally {
    for (const x of clients) x.close();
    if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }
});

test('c1m serve: a --grace not longer than the shutdown spread is refused', GUARD, async () => {
  const c = cli(['gateway', '--no-auth', '--port', '0', '--shutdown-spread', '6000', '--grace', '5000']);
  const { code } = await within(c.exited, 'the CLI to exit');
  assert.equal(code, 2);
  assert.match(c.stderr, /--grace 5000 must be longer than the shutdown spread \(6000 ms\)/);
  const bad = cli(['gateway', '--no-auth', '--port', '0', '--shutdown-spread', 'soon']);
  assert.equal((await within(bad.exited, 'the CLI to exit')).code, 2);
  assert.match(bad.stderr, /--shutdown-spread must be a non-negative integer/);
});

test('--processes 2, SIGTERM to the whole process group (as systemd sends it): the workers keep the spread past their own 5 s', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
  // Its own process group, so that the signal reaches the supervisor and both workers at once.
  const child = spawn(process.execPath, [runJs, 'serve', 'ws-echo', '--port', '0', '--host', HOST, '--processes', '2', '--handler-options', '{"shutdownSpread":6000}'],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', errText = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const clients: GatewayClient[] = [];
  try {
    await waitFor(() => / listening on /.test(out) || child.exitCode !== null, 'the listening line', 60_000);
    const port = Number(/ listening on [\d.]+:(\d+) /.exec(out)?.[1]);
    assert.ok(port > 0, `stdout ${out}, stderr ${errText}`);
    for (let i = 0; i < 20; i++) {
      const c = new GatewayClient(`ws://${HOST}:${port}/`);
      await within(c.opened, 'the upgrade');
      clients.push(c);
    }
    process.kill(-child.pid!, 'SIGTERM');
    assert.equal(await within(exited, 'the server to exit', 30_000), 0, errText);
    await waitFor(() => clients.every((c) => c.closed !== undefined), 'every client closed');
    // Reset at a worker's own 5 s deadline they would be 1006.
    assert.deepEqual(clients.map((c) => c.closed!.code), clients.map(() => 1001), errText);
  } finally {
    for (const c of clients) c.close();
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
});

/**
 * The gateway's admin listener (`adminPort`, `c1m serve gateway --admin-port`): publish,
 * `/metrics`, `/stats` and `/dashboard` move to it and the public port serves only `/ws`;
 * publish auth is enforced there as before; with `--processes 2` every worker listens on it and
 * its `/metrics` sums both; bad ports are refused with the reason (programmatic and CLI).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { listen, type Server } from '../../src/index.js';
import { createGateway } from '../../src/apps/gateway/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import {
  GatewayClient, NATS_MISSING, cli, freePort, gatewayClient, listening, promValue, publishHttp, scrape, signToken, startNats,
  stopProcess,
} from '../helpers/gateway.js';
import { GUARD, HOST, openFds, waitFor, within } from '../helpers/net.js';

const SECRET = 'a-test-secret-of-enough-length';
const KEY = new TextEncoder().encode(SECRET);

const status = async (port: number, path: string, init?: RequestInit): Promise<number> => (await fetch(`http://${HOST}:${port}${path}`, init)).status;

describe('gateway --admin-port, one process', () => {
  let server: Server;
  let port: number;
  let admin: number;
  const clients: GatewayClient[] = [];

  before(async () => {
    admin = await freePort();
    server = await listen(await createGateway({ jwtSecret: SECRET, publishToken: 'pt', adminPort: admin }), { port: 0, host: HOST });
    port = server.address.port;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close(1000);
  });

  test('a publish on the admin port reaches a subscriber of the public port; the answer counts it', GUARD, async () => {
    const token = await signToken({ sub: 'reader', topics: ['room.*'] }, KEY);
    const c = await gatewayClient(port, `?token=${token}&topics=room.1`);
    clients.push(c);
    await c.next((m) => m.op === 'ack', 'ack');
    const r = await publishHttp(admin, 'room.1', 'hello', { Authorization: 'Bearer pt' });
    assert.deepEqual({ status: r.status, delivered: r.body.delivered, seq: r.body.seq }, { status: 200, delivered: 1, seq: 1 });
    await waitFor(() => c.deliveries().length === 1, 'the delivery');
    assert.deepEqual(c.deliveries()[0], { op: 'msg', topic: 'room.1', seq: 1, data: 'hello' });
  });

  test('the public port serves only /ws: publish, /metrics, /stats, /dashboard answer 404 there, and nothing is published', GUARD, async () => {
    const c = await gatewayClient(port, `?token=${await signToken({ sub: 'r', topics: ['only'] }, KEY)}&topics=only`);
    clients.push(c);
    await c.next((m) => m.op === 'ack', 'ack');
    const r = await publishHttp(port, 'only', 'x', { Authorization: 'Bearer pt' });
    assert.equal(r.status, 404);
    for (const path of ['/metrics', '/stats', '/dashboard', '/dashboard/chart.js']) assert.equal(await status(port, path), 404, path);
    // On the admin port the same requests are served (a fence: the refused publish would be before it).
    assert.equal((await publishHttp(admin, 'only', 'fence', { Authorization: 'Bearer pt' })).status, 200);
    await waitFor(() => c.deliveries().length === 1, 'the fence');
    assert.deepEqual(c.deliveries().map((m) => m.data), ['fence']);
    const m = await scrape(admin);
    assert.equal(promValue(m, 'c1m_workers'), 1);
    assert.ok(promValue(m, 'c1m_gateway_clients') >= 1);
    assert.equal(await status(admin, '/dashboard'), 200);
    assert.equal((await (await fetch(`http://${HOST}:${admin}/stats`)).json() as Record<string, number>).c1m_workers, 1);
  });

  test('the admin port does not upgrade WebSockets', GUARD, async () => {
    const ws = new GatewayClient(`ws://${HOST}:${admin}/ws?token=${await signToken({ sub: 'x', topics: ['a'] }, KEY)}`);
    await assert.rejects(ws.opened, /404/);
  });

  test('publish auth on the admin port: 401 without or with a bad token, 403 without the publish claim, 405 for GET', GUARD, async () => {
    const reader = await signToken({ sub: 'reader', topics: ['room.*'] }, KEY);
    const writer = await signToken({ sub: 'writer', publish: ['room.*'] }, KEY);
    assert.equal((await publishHttp(admin, 'room.2', 'x')).status, 401);
    assert.equal((await publishHttp(admin, 'room.2', 'x', { Authorization: 'Bearer nope' })).status, 401);
    assert.equal((await publishHttp(admin, 'room.2', 'x', { Authorization: `Bearer ${reader}` })).status, 403);
    assert.equal((await publishHttp(admin, 'other', 'x', { Authorization: `Bearer ${writer}` })).status, 403);
    assert.equal((await publishHttp(admin, 'room.2', 'x', { Authorization: `Bearer ${writer}` })).status, 200);
    assert.equal(await status(admin, '/publish/room.2'), 405);
    assert.equal(await status(admin, '/elsewhere'), 404);
  });
});

describe('gateway adminPort: refusals', () => {
  test('a port that is not 1-65535 or a busy one: createGateway rejects with the reason, nothing left open', GUARD, async () => {
    for (const bad of [0, 70000, 1.5, -1]) await assert.rejects(createGateway({ noAuth: true, adminPort: bad }), /adminPort must be a port number from 1 to 65535/);
    await assert.rejects(createGateway({ noAuth: true, adminPort: 9000, adminHost: '' }), /adminHost must be an address/);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, HOST, r));
    try {
      const taken = (busy.address() as { port: number }).port;
      await assert.rejects(createGateway({ noAuth: true, adminPort: taken }), new RegExp(`admin port 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
      const fds = openFds();
      await assert.rejects(createGateway({ noAuth: true, adminPort: taken }), /EADDRINUSE/);
      assert.equal(openFds(), fds, 'the admin reactor that could not listen is closed');
    } finally {
      busy.close();
    }
  });

  test('c1m serve gateway: bad --admin-port, the same port as --port or --metrics-port, --admin-host alone: exit 2 with the reason', GUARD, async () => {
    const cases: [string[], RegExp][] = [
      [['--port', '0', '--admin-port', '0'], /--admin-port must be a port number from 1 to 65535/],
      [['--port', '0', '--admin-port', 'x'], /--admin-port must be a port number from 1 to 65535/],
      [['--port', '0', '--admin-port', '65536'], /--admin-port must be a port number from 1 to 65535/],
      [['--port', '9123', '--admin-port', '9123'], /--admin-port 9123 is also --port/],
      [['--port', '0', '--metrics-port', '9124', '--admin-port', '9124'], /--admin-port 9124 is also --metrics-port/],
      [['--port', '0', '--admin-host', '127.0.0.1'], /--admin-host needs --admin-port/],
      [['--port', '0', '--admin-port', '9125', '--admin-host', 'localhost'], /--admin-host must be an IP address/],
    ];
    for (const [args, reason] of cases) {
      const g = cli(['gateway', '--no-auth', ...args]);
      assert.deepEqual(await within(g.exited, 'exit'), { code: 2, signal: null }, args.join(' '));
      assert.match(g.stderr, reason);
    }
    const echo = cli(['echo', '--port', '0', '--admin-port', '9126']);
    assert.deepEqual(await within(echo.exited, 'exit'), { code: 2, signal: null });
    assert.match(echo.stderr, /--admin-port applies to the gateway app only/);
  });
});

describe('gateway --admin-port --processes 2 over NATS', { skip: NATS_MISSING || (!nativeAvailable && 'native backend unavailable') }, () => {
  let nats: ChildProcess;
  let url: string;
  before(async () => {
    const natsPort = await freePort();
    nats = await startNats(natsPort);
    url = `nats://${HOST}:${natsPort}`;
  });
  after(async () => {
    await stopProcess(nats);
  });

  test('every worker serves the admin port: its /metrics sums both workers; a publish there reaches both workers\' subscribers; auth holds', GUARD, async () => {
    const admin = await freePort();
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--processes', '2', '--nats', url, '--jwt-secret', SECRET, '--publish-token', 'pt', '--admin-port', String(admin)]);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      await waitFor(() => g.stdout.includes(`gateway admin (publish, metrics, dashboard) on http://127.0.0.1:${admin}/`), 'the admin line');
      const token = await signToken({ sub: 'r', topics: ['both'] }, KEY);
      // Connect until both workers have subscribers (the kernel spreads connections).
      const workers = new Set<string>();
      while (workers.size < 2 || clients.length < 6) {
        const c = await gatewayClient(port, `?token=${token}&topics=both`);
        clients.push(c);
        const ack = await c.next((m) => m.op === 'ack', 'ack');
        workers.add((ack.topics as Record<string, { epoch: string }>).both!.epoch.split('-')[0]!);
      }
      // Whichever worker answers, the sum is over both: each has one NATS subscription (both).
      let m = await scrape(admin);
      while (promValue(m, 'c1m_gateway_nats_subscriptions') !== 2) m = await scrape(admin);
      assert.equal(promValue(m, 'c1m_workers'), 2);
      assert.equal(promValue(m, 'c1m_gateway_clients'), clients.length);
      assert.equal(promValue(m, 'c1m_gateway_subscriptions'), clients.length);
      assert.equal(await status(port, '/metrics'), 404);
      assert.equal((await publishHttp(port, 'both', 'x', { Authorization: 'Bearer pt' })).status, 404);
      assert.equal((await publishHttp(admin, 'both', 'x')).status, 401);
      assert.equal((await publishHttp(admin, 'both', 'x', { Authorization: `Bearer ${token}` })).status, 403);
      const r = await publishHttp(admin, 'both', 'to all', { Authorization: 'Bearer pt' });
      assert.deepEqual(r, { status: 200, body: { delivered: null, seq: null, epoch: null } });
      await Promise.all(clients.map((c) => waitFor(() => c.deliveries('both').length === 1, 'the delivery')));
      for (const c of clients) assert.deepEqual(c.deliveries('both').map((x) => x.data), ['to all']);
      g.child.kill('SIGTERM');
      assert.deepEqual(await within(g.exited, 'the gateway to exit', 60_000), { code: 0, signal: null }, g.stderr);
    } finally {
      for (const c of clients) c.close();
      g.child.kill('SIGKILL');
    }
  });
});

/**
 * TCP keep-alive (`tcpKeepAlive`): the kernel's probes, as `ss` sees them, on accepted
 * connections in every serving mode and backend and on outbound connects; and a peer that
 * vanishes without a FIN or RST (every TCP packet dropped, in a network namespace of its own:
 * root, `unshare`, `ip`) closes with ETIMEDOUT on a server that probes, while one that does not
 * probe keeps it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { createReactor, serve, type Connection } from '../../src/index.js';
// serve() starts src/engine/worker.js by URL; this type-only import makes tsc emit it into build-test.
import type {} from '../../src/engine/worker.js';
import { backends, nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, RawClient, deferred, echoHandler, rawClient, waitFor, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const handler = new URL('../fixtures/who-echo.js', import.meta.url);
const deadPeer = fileURLToPath(new URL('../fixtures/keepalive-dead-peer.js', import.meta.url));

/** `ss` timers of the established TCP sockets whose local (sport) or remote (dport) port is `port`. */
function ssTimers(side: 'sport' | 'dport', port: number): string[] {
  const r = spawnSync('ss', ['-tnoH', 'state', 'established', `( ${side} = :${port} )`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ss failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => /timer:\(([^,]+),/.exec(l)?.[1] ?? 'none');
}
/**
 * Wait until `n` sockets on local port `port` all show the keep-alive timer: a socket with
 * unacknowledged data (a greeting, session tickets) shows its retransmission timer ('on') until
 * the peer's ACK, which may be delayed by up to ~40 ms.
 */
async function keepAliveTimers(port: number, n: number): Promise<void> {
  let timers: string[] = [];
  await waitFor(() => (timers = ssTimers('sport', port)).length === n && timers.every((t) => t === 'keepalive'), 'keep-alive timers', 10_000)
    .catch(() => assert.fail(`ss timers on port ${port}: ${timers}`));
}
const hasSs = spawnSync('ss', ['-V']).status === 0;
const noSs = hasSs ? false : 'needs ss (iproute2)';

async function clients(port: number, n: number): Promise<RawClient[]> {
  return Promise.all(Array.from({ length: n }, () => rawClient(port)));
}

for (const backend of backends) {
  describe(`tcpKeepAlive (${backend})`, () => {
    test('accepted connections are probed with it, not without it', { ...GUARD, skip: noSs }, async () => {
      for (const tcpKeepAlive of [{ idle: 600, interval: 60, count: 5 }, undefined]) {
        const opened = { n: 0 };
        const reactor = createReactor({ ...echoHandler, onOpen: () => void opened.n++ }, { backend });
        const { port } = await reactor.listen({ port: 0, host: HOST, ...(tcpKeepAlive ? { tcpKeepAlive } : {}) });
        const cs = await clients(port, 3);
        try {
          await waitFor(() => opened.n === 3, 'accepts');
          const timers = ssTimers('sport', port);
          assert.equal(timers.length, 3, `ss: ${timers}`);
          assert.deepEqual(timers, Array(3).fill(tcpKeepAlive ? 'keepalive' : 'none'), `with ${JSON.stringify(tcpKeepAlive)}`);
        } finally {
          for (const c of cs) c.destroy();
          await reactor.close(1000);
        }
      }
    });

    test('a TLS listener: its accepted connections are probed too (set on the raw socket)', { ...GUARD, skip: noSs }, async () => {
      const certs = testCerts();
      const opened = { n: 0 };
      const reactor = createReactor({ ...echoHandler, onOpen: () => void opened.n++ }, { backend });
      const { port } = await reactor.listen({ port: 0, host: HOST, tls: { cert: certs.server.cert, key: certs.server.key }, tcpKeepAlive: 800 });
      const sockets = await Promise.all(Array.from({ length: 2 }, () => new Promise<TLSSocket>((resolve, reject) => {
        const s = tlsConnect({ host: HOST, port, ca: certs.ca, servername: 'localhost' }, () => resolve(s));
        s.on('error', reject);
      })));
      try {
        await waitFor(() => opened.n === 2, 'handshakes');
        await keepAliveTimers(port, 2); // once the session tickets are acknowledged
      } finally {
        for (const s of sockets) s.destroy();
        await reactor.close(1000);
      }
    });

    test('an outbound connect is probed with it', { ...GUARD, skip: noSs }, async () => {
      const srv = createReactor(echoHandler, { backend });
      const { port } = await srv.listen({ port: 0, host: HOST });
      const open = deferred<Connection>();
      const cli = createReactor({ onOpen: (c) => open.resolve(c) }, { backend });
      try {
        cli.connect({ host: HOST, port, tcpKeepAlive: 900 });
        await within(open.promise, 'connect');
        assert.deepEqual(ssTimers('dport', port), ['keepalive']);
      } finally {
        await cli.close(1000);
        await srv.close(1000);
      }
    });
  });
}

describe('tcpKeepAlive in serve() modes (native)', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  for (const mode of [{ threads: 2 }, { processes: 2 }]) {
    test(`${JSON.stringify(mode)}: every worker's accepted connections are probed`, { ...GUARD, skip: noSs }, async () => {
      const h = await serve({ handler, ...mode, port: 0, host: HOST, backend: 'native', tcpKeepAlive: { idle: 700 } });
      const cs = await clients(h.address.port, 6);
      try {
        // who-echo answers with the worker's identity: every connection was accepted and served
        await Promise.all(cs.map(async (c) => {
          await c.send('x');
          await c.waitBytes(1);
        }));
        await keepAliveTimers(h.address.port, 6); // once the echoes are acknowledged
      } finally {
        for (const c of cs) c.destroy();
        await h.close(2000);
      }
    });
  }
});

function canUnshare(): string {
  if (process.getuid?.() !== 0) return 'needs root for a network namespace';
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && ip rule add pref 100 lookup local && ip rule del pref 0'], { encoding: 'utf8' });
  return r.status === 0 ? '' : `unshare/ip unavailable: ${(r.stderr || r.error?.message || '').trim()}`;
}

describe('tcpKeepAlive and a vanished peer (native)', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  const why = canUnshare();
  test('the probing server closes it with ETIMEDOUT; a server without keep-alive keeps it', { ...GUARD, skip: why || false }, () => {
    const r = spawnSync('unshare', ['-n', process.execPath, deadPeer, '30'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { closes: { server: string; kind: string; code?: string }[]; open: { keepalive: number; plain: number } };
    assert.deepEqual(out.closes.map((c) => [c.server, c.kind, c.code]), [['keepalive', 'error', 'ETIMEDOUT']], JSON.stringify(out));
    assert.deepEqual(out.open, { keepalive: 0, plain: 1 });
  });
});

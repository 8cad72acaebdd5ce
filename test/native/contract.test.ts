/**
 * Native backend contract: every socket is non-blocking, close-on-exec and has TCP_NODELAY
 * (when asked) from its first write on; no file descriptor outlives its connection or its reactor.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, test } from 'node:test';
import { loadBinding, type Binding } from '../../src/core/binding.js';
import { createReactor, type Connection, type Reactor } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, deferred, echoHandler, openFds, rawClient, startServer, waitFor, within } from '../helpers/net.js';

const fdOf = (c: Connection): number => (c as unknown as { fd: number }).fd;
/** fdInfo without its keep-alive settings (their own test checks them). */
const basics = (i: ReturnType<Binding['fdInfo']>) => i && { nonblock: i.nonblock, cloexec: i.cloexec, nodelay: i.nodelay };

/** The fd in this process of the TCP socket listening on `port` (via /proc/net/tcp inodes). */
function listenerFd(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m && inodes.has(m[1]!)) return Number(fd);
    } catch {
      // the fd closed meanwhile
    }
  }
  return undefined;
}

/** Open, echo and close `n` connections, `batch` at a time. */
async function churn(port: number, n: number, batch = 50): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
      const c = await rawClient(port);
      await c.send('ping');
      await c.waitBytes(4);
      c.socket.end();
      await c.waitClosed();
    }));
  }
}

describe('native contract', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  const b = loadBinding()!;

  test('accepted, connected and listening sockets are non-blocking, close-on-exec, TCP_NODELAY (accepted: from the listener; connected: from the first write)', GUARD, async () => {
    const accepted = deferred<Connection>();
    const srvGot = deferred<void>();
    const srv = await startServer('native', {
      onOpen(c) {
        accepted.resolve(c);
      },
      onData() {
        srvGot.resolve();
      },
    });
    const outbound = deferred<Connection>();
    const cli = createReactor({ onOpen: (c) => outbound.resolve(c) }, { backend: 'native' });
    try {
      const client = await rawClient(srv.port);
      const conn = cli.connect({ host: HOST, port: srv.port });
      const acc = await within(accepted.promise, 'accept');
      const out = await within(outbound.promise, 'connect');
      assert.ok(fdOf(acc) >= 0 && fdOf(out) >= 0);
      // Accepted: inherited from the listener (Linux), no setsockopt per accept.
      assert.deepEqual(basics(b.fdInfo(fdOf(acc))), { nonblock: true, cloexec: true, nodelay: 1 }, `accepted socket (fd ${fdOf(acc)}) before writing`);
      // Connected: deferred to the first write, so an idle connection never pays the setsockopt.
      assert.deepEqual(basics(b.fdInfo(fdOf(out))), { nonblock: true, cloexec: true, nodelay: 0 }, `connected socket (fd ${fdOf(out)}) before writing`);
      assert.equal(acc.write('x'), true);
      await client.waitBytes(1);
      assert.equal(out.write('y'), true);
      await within(srvGot.promise, 'server read');
      for (const [what, c] of [['accepted', acc], ['connected', out]] as const) {
        assert.deepEqual(basics(b.fdInfo(fdOf(c))), { nonblock: true, cloexec: true, nodelay: 1 }, `${what} socket (fd ${fdOf(c)}) after writing`);
      }
      assert.equal(fdOf(conn), fdOf(out));
      const lfd = listenerFd(srv.port);
      assert.ok(lfd !== undefined, 'found the listening socket');
      const info = b.fdInfo(lfd);
      assert.equal(info?.nonblock, true, 'listener non-blocking');
      assert.equal(info?.cloexec, true, 'listener close-on-exec');
      assert.equal(info?.nodelay, 1, 'listener TCP_NODELAY (what accepted sockets inherit)');
      // The reactor's own fds (epoll, eventfd, timerfd) are close-on-exec too.
      for (const fd of readdirSync('/proc/self/fd').map(Number)) {
        let link = '';
        try {
          link = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          continue;
        }
        if (/^anon_inode:\[?(eventpoll|eventfd|timerfd)/.test(link)) {
          const fi = b.fdInfo(fd);
          if (fi) assert.equal(fi.cloexec, true, `${link} (fd ${fd}) close-on-exec`);
        }
      }
      client.destroy();
    } finally {
      await cli.close(1000);
      await srv.reactor.close(1000);
    }
  });

  test('tcpKeepAlive: on the listener (accepted sockets inherit it) and on a connected socket; off by default', GUARD, async () => {
    const accepted: Connection[] = [];
    const srv = createReactor({ onOpen: (c) => void accepted.push(c) }, { backend: 'native' });
    const { port } = await srv.listen({ port: 0, host: HOST, tcpKeepAlive: { idle: 7, interval: 2, count: 4 } });
    const plain = await startServer('native', { onOpen: (c) => void accepted.push(c) });
    const outbound: Connection[] = [];
    const cli = createReactor({ onOpen: (c) => void outbound.push(c) }, { backend: 'native' });
    try {
      cli.connect({ host: HOST, port, tcpKeepAlive: 9 });
      cli.connect({ host: HOST, port: plain.port });
      await waitFor(() => accepted.length === 2 && outbound.length === 2, 'accepts and connects');
      const ka = (c: Connection) => b.fdInfo(fdOf(c))?.keepalive;
      assert.deepEqual(b.fdInfo(listenerFd(port)!)?.keepalive, [7, 2, 4], 'listener');
      const [viaKa, viaPlain] = accepted[0]!.localPort === port ? [accepted[0]!, accepted[1]!] : [accepted[1]!, accepted[0]!];
      assert.deepEqual(ka(viaKa), [7, 2, 4], 'accepted from the keep-alive listener');
      assert.equal(ka(viaPlain)?.[0], 0, 'accepted from a listener without it: off');
      const [outKa, outPlain] = outbound[0]!.remotePort === port ? [outbound[0]!, outbound[1]!] : [outbound[1]!, outbound[0]!];
      assert.deepEqual(ka(outKa), [9, 3, 3], 'connected with tcpKeepAlive: 9 (interval idle/3, count 3)');
      assert.equal(ka(outPlain)?.[0], 0, 'connected without it: off');
    } finally {
      await cli.close(1000);
      await srv.close(1000);
      await plain.reactor.close(1000);
    }
  });

  test('noDelay: false leaves Nagle on, also after writes', GUARD, async () => {
    const accepted = deferred<Connection>();
    const srv = await startServer('native', { onOpen: (c) => accepted.resolve(c) }, { noDelay: false });
    try {
      const client = await rawClient(srv.port);
      const c = await within(accepted.promise, 'accept');
      assert.equal(c.write('x'), true);
      await client.waitBytes(1);
      const info = b.fdInfo(fdOf(c));
      assert.equal(info?.nodelay, 0);
      assert.equal(info?.nonblock, true);
      assert.equal(b.fdInfo(listenerFd(srv.port)!)?.nodelay, 0, 'nor on the listener');
      client.destroy();
    } finally {
      await srv.reactor.close(1000);
    }
  });

  test('no fd leak: 200 connections in and 50 out, then reactor.close()', GUARD, async () => {
    // Warm up once so that lazily created runtime fds exist before counting.
    const warm = await startServer('native', echoHandler);
    await churn(warm.port, 5);
    await warm.reactor.close(1000);

    const before = openFds();
    const srv = await startServer('native', echoHandler);
    let outOpen = 0, outClosed = 0;
    const cli: Reactor = createReactor({
      onOpen(c) {
        outOpen++;
        c.write('out');
      },
      onData: (c) => void c.close(),
      onClose: () => void outClosed++,
    }, { backend: 'native' });
    await churn(srv.port, 200);
    for (let i = 0; i < 50; i++) cli.connect({ host: HOST, port: srv.port });
    await waitFor(() => outClosed === 50, 'outbound connections closed');
    assert.equal(outOpen, 50);
    await waitFor(() => srv.reactor.stats.connections === 0, 'server connections closed');
    // Some connections still open at close time: close() must release them too.
    const held = await Promise.all(Array.from({ length: 10 }, () => rawClient(srv.port)));
    await waitFor(() => srv.reactor.stats.connections === 10, 'held connections');
    await cli.close(1000);
    await srv.reactor.close(1000);
    await Promise.all(held.map((c) => c.waitClosed()));
    await waitFor(() => openFds() === before, `fd count back to ${before} (now ${openFds()})`, 10_000);
    assert.equal(openFds(), before);
  });

  test('without onOpen, accepts cost no JS call, yet count, list and close like any connection', GUARD, async () => {
    const closes: string[] = [];
    const quiet = createReactor({ onClose: (_c, r) => void closes.push(r.kind) }, { backend: 'native' });
    const { port } = await quiet.listen({ port: 0, host: HOST });
    try {
      const clients = await Promise.all(Array.from({ length: 40 }, () => rawClient(port)));
      await waitFor(() => quiet.stats.connections === 40, '40 quiet accepts counted');
      assert.equal(quiet.stats.batches, 0, 'accepts alone called into JS');
      assert.equal(quiet.connections().length, 40);
      // Closes of quietly accepted connections: reported once each, and counted down.
      for (const c of clients.slice(0, 10)) c.socket.end();
      await waitFor(() => closes.length === 10, '10 closes');
      assert.deepEqual(new Set(closes), new Set(['end']));
      assert.equal(quiet.stats.connections, 30);
      // With onOpen every accept is reported.
      let opens = 0;
      const loud = createReactor({ onOpen: () => void opens++ }, { backend: 'native' });
      const l = await loud.listen({ port: 0, host: HOST });
      const more = await Promise.all(Array.from({ length: 5 }, () => rawClient(l.port)));
      await waitFor(() => opens === 5, '5 onOpen calls');
      assert.ok(loud.stats.batches > 0);
      await loud.close(1000);
      for (const c of [...clients, ...more]) c.destroy();
      await within(quiet.close(5000), 'close() counts the quiet accepts down to 0');
      assert.equal(closes.length, 40);
    } finally {
      await quiet.close(1000);
    }
  });
});

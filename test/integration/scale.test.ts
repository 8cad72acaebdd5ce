/**
 * 10,000 concurrent connections on one server reactor, on every backend. The client side runs
 * in a child process (both ends in one process would need 20,000 fds, the whole limit here).
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { CloseReason } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { deferred, echoHandler, startServer, waitFor, within } from '../helpers/net.js';

const N = 10_000;
const clientScript = fileURLToPath(new URL('../fixtures/scale-client.js', import.meta.url));

type Msg = { type: 'echoed'; ok: number; errors: string[]; nerrors: number; closed: number } | { type: 'closed'; closedByPeerEarlier: number };

for (const backend of backends) {
  describe(`scale (${backend})`, () => {
    test(`${N} concurrent connections each echo once, all close, count returns to 0`, { timeout: 180_000 }, async () => {
      let opens = 0, maxOpen = 0;
      const kinds = new Map<string, number>();
      const srv = await startServer(backend, {
        ...echoHandler,
        onOpen() {
          opens++;
        },
        onClose(_c, r: CloseReason) {
          kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
        },
      });
      const child = fork(clientScript, [String(srv.port), String(N)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const exited = deferred<number | null>();
      child.on('exit', (code) => exited.resolve(code));
      const echoed = deferred<Msg>(), closed = deferred<Msg>();
      child.on('message', (m: Msg) => (m.type === 'echoed' ? echoed.resolve(m) : closed.resolve(m)));
      try {
        const e = await within(echoed.promise, 'every client echoed', 150_000);
        assert.equal(e.type, 'echoed');
        if (e.type === 'echoed') {
          assert.deepEqual(e.errors, [], `${e.nerrors} client errors`);
          assert.equal(e.ok, N);
          assert.equal(e.closed, 0, 'no connection closed early');
        }
        // Every connection is open at once on the server.
        await waitFor(() => srv.reactor.stats.connections === N, `${N} open server connections (have ${srv.reactor.stats.connections})`, 60_000);
        maxOpen = srv.reactor.stats.connections;
        assert.equal(opens, N);
        assert.equal(kinds.size, 0, 'nothing closed yet');

        child.send({ type: 'close' });
        await within(closed.promise, 'every client closed', 120_000);
        await waitFor(() => srv.reactor.stats.connections === 0, `0 server connections (have ${srv.reactor.stats.connections})`, 60_000);
        assert.equal(maxOpen, N);
        assert.deepEqual([...kinds], [['end', N]]);
        assert.deepEqual(srv.errors, []);
        assert.equal(await within(exited.promise, 'client exit'), 0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await srv.reactor.close(1000);
      }
    });
  });
}

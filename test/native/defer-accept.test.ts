/**
 * `deferAccept` (TCP_DEFER_ACCEPT on the listener) and the loop's second harvest: a client
 * that has sent nothing is not accepted; once its first bytes are in, the accept and the read
 * happen in one poll, so JS gets its OPEN and its DATA in one batch (one crossing). Without the
 * option a silent client is accepted at once. Also through serve() in a prefork worker (the
 * path `c1m serve gateway` takes) and behind a threads-mode acceptor (whose worker harvests a
 * handed-off connection's first bytes in the same poll), and the option's validation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serve, listen, type Handler } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, rawClient, sleep, waitFor } from '../helpers/net.js';
import { RawReactor } from './raw-reactor.js';

/** How long a silent client is watched for an accept that must not come (deferAccept is 5 s). */
const SILENCE_MS = 300;

describe('deferAccept', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('a silent client is held back; its first bytes come with its OPEN in one batch', GUARD, async () => {
    const r = new RawReactor();
    const k = r.b.constants;
    try {
      const { port } = r.listen([], k.LB_ROUND_ROBIN, 5);
      const clients = await Promise.all([rawClient(port), rawClient(port), rawClient(port)]);
      await sleep(SILENCE_MS);
      assert.equal(r.of(k.EV_OPEN).length, 0, 'no accept before the first bytes');
      clients.forEach((c, i) => c.socket.write(`hello ${i}`));
      await waitFor(() => r.of(k.EV_DATA).length === 3, 'three DATA records');
      const opens = r.of(k.EV_OPEN), datas = r.of(k.EV_DATA);
      assert.equal(opens.length, 3);
      for (const o of opens) {
        const d = datas.find((x) => x.fd === o.fd && x.gen === o.gen);
        assert.ok(d, `DATA for fd ${o.fd}`);
        assert.equal(d.batch, o.batch, `fd ${o.fd}: OPEN and DATA in one batch`);
      }
      for (const c of clients) c.socket.destroy();
    } finally {
      r.close();
    }
  });

  test('without it a silent client is accepted at once', GUARD, async () => {
    const r = new RawReactor();
    const k = r.b.constants;
    try {
      const { port } = r.listen();
      const c = await rawClient(port);
      await waitFor(() => r.of(k.EV_OPEN).length === 1, 'the accept');
      assert.equal(r.of(k.EV_DATA).length, 0);
      c.socket.destroy();
    } finally {
      r.close();
    }
  });

  for (const mode of [{ processes: 1 }, { threads: 2 }]) test(`serve(${JSON.stringify(mode)}, deferAccept) reaches the listener`, GUARD, async () => {
    const handler = new URL('../fixtures/young-gen.js', import.meta.url); // echoes what it gets
    const srv = await serve({ handler, port: 0, host: '127.0.0.1', ...mode, deferAccept: 5, metricsPort: 0 });
    const connections = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${srv.metricsAddress!.port}/metrics`)).text();
      return Number(/^c1m_connections (\S+)$/m.exec(text)?.[1]);
    };
    try {
      const c = await rawClient(srv.address.port);
      await sleep(SILENCE_MS);
      assert.equal(await connections(), 0, 'not accepted while silent');
      c.socket.write('ping\n');
      await waitFor(() => c.bytes().toString() === 'ping\n', 'the echo');
      assert.equal(await connections(), 1);
      c.socket.destroy();
    } finally {
      await srv.close(1000);
    }
  });

  test('deferAccept is an integer from 0 to 3600', async () => {
    const h: Handler = {};
    for (const deferAccept of [-1, 1.5, 3601, '5'] as unknown as number[]) {
      await assert.rejects(listen(h, { port: 0, host: '127.0.0.1', deferAccept }), { code: 'ERR_C1M_INVALID_OPTION', message: /deferAccept/ });
    }
  });
});

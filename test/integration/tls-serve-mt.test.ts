/**
 * TLS in serve()'s threads and processes modes: sessions on every worker, session tickets that
 * resume on any worker (one set of ticket keys per server), a certificate reload
 * (`handle.setTls`) that reaches every worker and a worker started later, and `ticketKeys` on
 * both backends. The handler answers "WHO\n" with its worker's pid:threadId, which proves the
 * connections spread over more than one worker.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { describe, test } from 'node:test';
import { serve, type ServeHandle } from '../../src/index.js';
import { backends, nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const certs = testCerts();
const WHO = new URL('../fixtures/tls-who.js', import.meta.url).href;
const FP_SERVER = new X509Certificate(certs.server.cert).fingerprint256;
const FP_OTHER = new X509Certificate(certs.other.cert).fingerprint256;
/** Connections per check: with two workers, all on one by chance is 2^-(N-1) for processes. */
const N = 16;

interface Answer {
  /** The worker: pid:threadId. */
  who: string;
  /** `conn.tls` in the worker: "<protocol> <resumed>". */
  serverTls: string;
  reused: boolean;
  fingerprint: string;
  session: Buffer | undefined;
}

/** One TLS connection: send WHO, read the answer, the certificate, whether it resumed, its ticket. */
function ask(port: number, session?: Buffer, servername?: string): Promise<Answer> {
  return within(new Promise<Answer>((resolve, reject) => {
    // The certificate is compared by fingerprint: a reloaded one need not match the name.
    const s = tlsConnect({ host: HOST, port, rejectUnauthorized: false, session, servername, maxVersion: 'TLSv1.3' }, () => s.write('WHO\n'));
    let ticket: Buffer | undefined;
    s.on('session', (t: Buffer) => (ticket = t));
    s.once('data', (d: Buffer) => {
      const fingerprint = s.getPeerCertificate().fingerprint256;
      const reused = s.isSessionReused();
      // TLS 1.3 sends its ticket after the handshake: wait for it on a first connection.
      const done = (): void => {
        s.end();
        const [who = '', ...tls] = d.toString('latin1').trim().split(' ');
        resolve({ who, serverTls: tls.join(' '), reused, fingerprint, session: ticket });
      };
      if (ticket || session) done();
      else s.once('session', () => setImmediate(done));
    });
    s.on('error', reject);
  }), 'a TLS answer');
}

async function askMany(port: number, session?: Buffer, servername?: string): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < N; i++) out.push(await ask(port, session, servername));
  return out;
}

const workersOf = (as: Answer[]): Set<string> => new Set(as.map((a) => a.who));

for (const mode of ['threads', 'processes'] as const) {
  describe(`serve({ tls, ${mode} })`, { skip: !nativeAvailable && 'native addon unavailable' }, () => {
    const start = (): Promise<ServeHandle> => serve({ handler: WHO, port: 0, host: HOST, [mode]: 2, tls: { cert: certs.server.cert, key: certs.server.key } });

    test('a session from one connection resumes on every later one, over more than one worker', GUARD, async () => {
      const h = await start();
      try {
        const first = await ask(h.address.port);
        assert.equal(first.reused, false);
        assert.equal(first.fingerprint, FP_SERVER);
        assert.ok(first.session, 'a session ticket');
        const again = await askMany(h.address.port, first.session);
        assert.equal(first.serverTls, 'TLSv1.3 false', 'conn.tls in the worker');
        assert.deepEqual(again.filter((a) => !a.reused).map((a) => a.who), [], 'every connection resumed');
        assert.deepEqual([...new Set(again.map((a) => a.serverTls))], ['TLSv1.3 true'], 'the workers saw resumed sessions');
        const workers = workersOf(again);
        assert.ok(workers.size > 1, `connections spread over workers: ${[...workers].join(', ')}`);
      } finally {
        await h.close();
      }
    });

    test('setTls: new connections on every worker get the new certificate; old tickets still resume', GUARD, async () => {
      const h = await start();
      try {
        const before = await ask(h.address.port);
        assert.equal(before.fingerprint, FP_SERVER);
        await h.setTls({ cert: certs.other.cert, key: certs.other.key });
        const after = await askMany(h.address.port);
        assert.deepEqual([...new Set(after.map((a) => a.fingerprint))], [FP_OTHER], 'every new connection has the new certificate');
        assert.ok(workersOf(after).size > 1, 'over more than one worker');
        // The server kept its ticket keys: a session from before the reload still resumes.
        const resumed = await askMany(h.address.port, before.session);
        assert.equal(resumed.filter((a) => a.reused).length, N, 'tickets from before the reload resume');
      } finally {
        await h.close();
      }
    });

    test('a key that does not match: serve rejects, setTls changes nothing; without tls setTls is refused', GUARD, async () => {
      await assert.rejects(serve({ handler: WHO, port: 0, host: HOST, [mode]: 2, tls: { cert: certs.server.cert, key: certs.other.key } }), { code: 'ERR_C1M_TLS_KEY_MISMATCH' });
      const h = await start();
      try {
        await assert.rejects(h.setTls({ cert: certs.other.cert, key: certs.server.key }), { code: 'ERR_C1M_TLS_KEY_MISMATCH' });
        const after = await askMany(h.address.port);
        assert.deepEqual([...new Set(after.map((a) => a.fingerprint))], [FP_SERVER]);
        await assert.rejects(h.setTls({ cert: certs.other.cert, key: certs.other.key, ticketKeys: new Uint8Array(48) }), { code: 'ERR_C1M_INVALID_OPTION' });
      } finally {
        await h.close();
      }
      const plain = await serve({ handler: WHO, port: 0, host: HOST, [mode]: 1 });
      try {
        await assert.rejects(plain.setTls({ cert: certs.other.cert, key: certs.other.key }), { code: 'ERR_C1M_INVALID_OPTION' });
      } finally {
        await plain.close();
      }
    });
  });
}

test('serve({ tls, processes }): options past 200 KiB (hundreds of SNI certificates) reach every worker, not through its environment, and so does a reload', { ...GUARD, skip: !nativeAvailable && 'native addon unavailable' }, async () => {
  const names = Array.from({ length: 300 }, (_, i) => `n${i}.test`);
  const sni = (pair: { cert: string; key: string }): Record<string, { cert: string; key: string }> => Object.fromEntries(names.map((n) => [n, pair]));
  const tls = { cert: certs.server.cert, key: certs.server.key, sni: sni(certs.other) };
  const size = names.length * (certs.other.cert.length + certs.other.key.length);
  assert.ok(size > 200 * 1024, `the options hold ${size} bytes of PEM`);
  const h = await serve({ handler: WHO, port: 0, host: HOST, processes: 2, tls });
  try {
    const plain = await askMany(h.address.port);
    assert.deepEqual([...new Set(plain.map((a) => a.fingerprint))], [FP_SERVER], 'no SNI: the default certificate');
    const named = await askMany(h.address.port, undefined, 'n299.test');
    assert.deepEqual([...new Set(named.map((a) => a.fingerprint))], [FP_OTHER], 'the last SNI name: its certificate');
    assert.ok(workersOf([...plain, ...named]).size > 1, 'over more than one worker');
    // Neither the key nor the job is in a worker's environment.
    const keyLine = certs.server.key.split('\n')[1]!;
    for (const pid of h.pids()) {
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1');
      assert.ok(!env.includes('C1M_WORKER=') && !env.includes(keyLine) && !env.includes(Buffer.from(certs.server.key).toString('base64').slice(0, 40)), `worker ${pid}'s environment holds no TLS options`);
    }
    // A reload of the same size reaches every worker: the default and every SNI name change.
    await h.setTls({ cert: certs.other.cert, key: certs.other.key, sni: sni(certs.server) });
    const after = await askMany(h.address.port);
    assert.deepEqual([...new Set(after.map((a) => a.fingerprint))], [FP_OTHER], 'the new default certificate');
    const afterNamed = await askMany(h.address.port, undefined, 'n0.test');
    assert.deepEqual([...new Set(afterNamed.map((a) => a.fingerprint))], [FP_SERVER], 'the new SNI certificates');
    assert.ok(workersOf([...after, ...afterNamed]).size > 1, 'over more than one worker');
  } finally {
    await h.close();
  }
});

test('serve({ tls, processes }): a worker that replaces a dead one starts with the reloaded certificate', { ...GUARD, skip: !nativeAvailable && 'native addon unavailable' }, async () => {
  const h = await serve({ handler: WHO, port: 0, host: HOST, processes: 2, tls: { cert: certs.server.cert, key: certs.server.key } });
  try {
    const first = await ask(h.address.port);
    await h.setTls({ cert: certs.other.cert, key: certs.other.key });
    const before = h.pids();
    process.kill(before[0]!, 'SIGKILL');
    await waitFor(() => h.pids().length === 2 && !h.pids().includes(before[0]!), 'a replacement worker');
    const fresh = h.pids().find((p) => !before.includes(p))!;
    // It is in pids() from its fork: ask until it has answered (the kernel spreads by port).
    let seen: Answer[] = [];
    for (let i = 0; i < 20 && !seen.some((a) => a.who.startsWith(`${fresh}:`)); i++) seen = seen.concat(await askMany(h.address.port));
    assert.ok(seen.some((a) => a.who.startsWith(`${fresh}:`)), `the replacement ${fresh} served connections`);
    assert.deepEqual([...new Set(seen.map((a) => a.fingerprint))], [FP_OTHER]);
    // ...and with the server's ticket keys.
    const resumed = await askMany(h.address.port, first.session);
    assert.equal(resumed.filter((a) => a.reused).length, N);
  } finally {
    await h.close();
  }
});

for (const backend of backends) {
  test(`serve({ tls }) single mode (${backend}): setTls reloads the certificate and keeps the ticket keys`, GUARD, async () => {
    const h = await serve({ handler: WHO, port: 0, host: HOST, backend, tls: { cert: certs.server.cert, key: certs.server.key } });
    try {
      assert.equal(h.mode, 'single');
      const before = await ask(h.address.port);
      assert.equal(before.fingerprint, FP_SERVER);
      await h.setTls({ cert: certs.other.cert, key: certs.other.key });
      assert.equal((await ask(h.address.port)).fingerprint, FP_OTHER);
      assert.equal((await ask(h.address.port, before.session)).reused, true, 'a ticket from before the reload resumes');
      await assert.rejects(h.setTls({ cert: certs.server.cert, key: certs.other.key }), { code: 'ERR_C1M_TLS_KEY_MISMATCH' });
      assert.equal((await ask(h.address.port)).fingerprint, FP_OTHER);
    } finally {
      await h.close();
    }
  });

  test(`tls.ticketKeys (${backend}): two servers with the same keys resume each other's sessions, other keys do not`, GUARD, async () => {
    const keys = new Uint8Array(80).map((_, i) => (i * 37 + 11) & 0xff);
    const other = new Uint8Array(80).map((_, i) => (i * 53 + 7) & 0xff);
    const handler = new URL('../../src/apps/echo.js', import.meta.url).href;
    const opts = (ticketKeys: Uint8Array) => ({ handler, port: 0, host: HOST, backend, tls: { cert: certs.server.cert, key: certs.server.key, ticketKeys } });
    const [a, b, c] = await Promise.all([serve(opts(keys)), serve(opts(keys)), serve(opts(other))]);
    try {
      const echoAsk = (port: number, session?: Buffer): Promise<{ reused: boolean; session?: Buffer }> => within(new Promise((resolve, reject) => {
        const s = tlsConnect({ host: HOST, port, rejectUnauthorized: false, session, maxVersion: 'TLSv1.3' }, () => s.write('x'));
        let ticket: Buffer | undefined;
        s.on('session', (t: Buffer) => (ticket = t));
        s.once('data', () => {
          const done = (): void => {
            s.end();
            resolve({ reused: s.isSessionReused(), session: ticket });
          };
          if (ticket || session) done();
          else s.once('session', () => setImmediate(done));
        });
        s.on('error', reject);
      }), 'a session');
      const first = await echoAsk(a.address.port);
      assert.equal((await echoAsk(b.address.port, first.session)).reused, true, 'same keys: resumed on the other server');
      assert.equal((await echoAsk(c.address.port, first.session)).reused, false, 'other keys: a full handshake');
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
}

/**
 * `c1m serve <app> --tls-cert FILE --tls-key FILE` on every backend: an HTTPS request answered
 * by the built-in http app, a graceful stop on SIGTERM, and the flags' misuse.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { get } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'bin', 'c1m.js');
const certs = testCerts();

for (const backend of backends) {
  describe(`c1m serve --tls-cert (${backend})`, () => {
    test('https GET / is answered by the http app, SIGTERM stops it cleanly', GUARD, async () => {
      const child = spawn(process.execPath, [CLI, 'serve', 'http', '--port', '0', '--host', HOST, '--backend', backend,
        '--tls-cert', join(certs.dir, 'server.crt'), '--tls-key', join(certs.dir, 'server.key')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const port = deferred<number>();
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on TLS [^:]+:(\d+)/.exec(out);
        if (m) port.resolve(Number(m[1]));
      });
      void exited.then(() => port.reject(new Error(`serve exited: ${out}`)));
      const p = await within(port.promise, 'the listening line');
      const body = await within(new Promise<string>((resolve, reject) => {
        get({ host: HOST, port: p, path: '/', ca: certs.ca, servername: 'localhost', agent: false }, (res) => {
          let b = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (b += d));
          res.on('end', () => resolve(`${res.statusCode} ${b}`));
        }).on('error', reject);
      }), 'the https response');
      assert.match(body, /^200 ./);
      child.kill('SIGTERM');
      assert.equal(await within(exited, 'exit'), 0);
    });
  });
}

test('c1m serve: --tls-cert without --tls-key is a usage error', GUARD, async () => {
  const child = spawn(process.execPath, [CLI, 'serve', 'http', '--port', '0', '--tls-cert', 'x.pem'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await within(new Promise<number | null>((r) => child.once('exit', (c) => r(c))), 'exit');
  assert.equal(code, 2);
  assert.match(err, /--tls-cert and --tls-key go together/);
});

test('serve refuses tls with threads or processes (ERR_C1M_TLS_UNSUPPORTED)', GUARD, async () => {
  const { serve } = await import('../../src/index.js');
  const tls = { cert: certs.server.cert, key: certs.server.key };
  const handler = new URL('../../src/apps/echo.js', import.meta.url).href;
  await assert.rejects(serve({ handler, port: 0, host: HOST, threads: 2, tls }), { code: 'ERR_C1M_TLS_UNSUPPORTED' });
  await assert.rejects(serve({ handler, port: 0, host: HOST, processes: 2, tls }), { code: 'ERR_C1M_TLS_UNSUPPORTED' });
});

/**
 * `c1m serve <app> --tls-cert FILE --tls-key FILE` on every backend: an HTTPS request answered
 * by the built-in http app, a graceful stop on SIGTERM, and the flags' misuse; with
 * `--threads 2` and `--processes 2` too, and a SIGHUP reload of the certificate files that
 * reaches every worker.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import WsClient from 'ws';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, within } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'bin', 'c1m.js');
const certs = testCerts();

/** GET / over https, trusting the test CA: "<status> <body>". */
function httpsGet(port: number): Promise<string> {
  return within(new Promise<string>((resolve, reject) => {
    get({ host: HOST, port, path: '/', ca: certs.ca, servername: 'localhost', agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => resolve(`${res.statusCode} ${b}`));
    }).on('error', reject);
  }), 'the https response');
}

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
      const body = await httpsGet(p);
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

/** `c1m serve ...` until its listening line: the child, its port, and a wait for an output line. */
async function startCli(args: string[]): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null>; line: (re: RegExp) => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  const waiters: [RegExp, () => void][] = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const [re, fn] of waiters) if (re.test(out)) fn();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const line = (re: RegExp): Promise<void> => within(new Promise<void>((r) => (re.test(out) ? r() : waiters.push([re, r]))), `output ${re}`);
  const port = deferred<number>();
  waiters.push([/listening on TLS [^:]+:\d+/, () => port.resolve(Number(/listening on TLS [^:]+:(\d+)/.exec(out)![1]))]);
  void exited.then(() => port.reject(new Error(`serve exited: ${out}`)));
  return { child, port: await within(port.promise, 'the listening line'), exited, line };
}

/** One line echoed over TLS (verified against the test CA). */
function tlsEcho(port: number, text: string): Promise<string> {
  return within(new Promise((resolve, reject) => {
    const s = tlsConnect({ host: HOST, port, ca: certs.ca, servername: 'localhost' }, () => s.write(text));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  }), 'the TLS echo');
}

/** One message echoed over wss:// (the `ws` package, trusting the test CA). */
function wssEcho(port: number, text: string): Promise<string> {
  return within(new Promise((resolve, reject) => {
    const ws = new WsClient(`wss://${HOST}:${port}/`, { ca: certs.ca });
    ws.once('open', () => ws.send(text));
    ws.once('message', (d: Buffer) => {
      ws.close(1000);
      resolve(d.toString());
    });
    ws.once('error', reject);
  }), 'the wss echo');
}

/** A TLS connection's peer certificate fingerprint and the worker that answered "WHO\n" (who-echo). */
function whoAndCert(port: number): Promise<{ fingerprint: string; who: string }> {
  return within(new Promise((resolve, reject) => {
    const s = tlsConnect({ host: HOST, port, rejectUnauthorized: false }, () => s.write('WHO\n'));
    s.once('data', (d: Buffer) => {
      resolve({ fingerprint: s.getPeerCertificate().fingerprint256, who: d.toString().trim() });
      s.end();
    });
    s.on('error', reject);
  }), 'a TLS answer');
}

for (const mode of ['threads', 'processes'] as const) {
  describe(`c1m serve --tls-cert --${mode} 2`, { skip: !backends.includes('native') && 'native backend not tested' }, () => {
    for (const app of ['http', 'echo', 'ws-echo'] as const) {
      test(`${app}: answered over TLS by its workers; SIGTERM stops it cleanly`, GUARD, async () => {
        const { child, port, exited } = await startCli([app, '--port', '0', '--host', HOST, `--${mode}`, '2',
          '--tls-cert', join(certs.dir, 'server.crt'), '--tls-key', join(certs.dir, 'server.key')]);
        for (let i = 0; i < 4; i++) {
          if (app === 'http') assert.match(await httpsGet(port), /^200 ./);
          else if (app === 'echo') assert.equal(await tlsEcho(port, `hello ${i}`), `hello ${i}`);
          else assert.equal(await wssEcho(port, `hello ${i}`), `hello ${i}`);
        }
        child.kill('SIGTERM');
        assert.equal(await within(exited, 'exit'), 0);
      });
    }

    test('SIGHUP reloads the certificate files in every worker', GUARD, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'c1m-tls-hup-'));
      try {
        const [crt, key] = [join(dir, 'c.crt'), join(dir, 'c.key')];
        writeFileSync(crt, certs.server.cert);
        writeFileSync(key, certs.server.key);
        const who = fileURLToPath(new URL('../fixtures/who-echo.js', import.meta.url));
        const { child, port, exited, line } = await startCli([who, '--port', '0', '--host', HOST, `--${mode}`, '2', '--tls-cert', crt, '--tls-key', key]);
        assert.equal((await whoAndCert(port)).fingerprint, new X509Certificate(certs.server.cert).fingerprint256);
        writeFileSync(crt, certs.other.cert);
        writeFileSync(key, certs.other.key);
        child.kill('SIGHUP');
        await line(/TLS certificate reloaded/);
        const after = await Promise.all(Array.from({ length: 16 }, () => whoAndCert(port)));
        assert.deepEqual([...new Set(after.map((a) => a.fingerprint))], [new X509Certificate(certs.other.cert).fingerprint256]);
        assert.ok(new Set(after.map((a) => a.who)).size > 1, 'over more than one worker');
        child.kill('SIGTERM');
        assert.equal(await within(exited, 'exit'), 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * `c1m bench <scenario> --tls` end to end at small scale: the CLI (a child process, with its
 * workers) against `c1m serve <app> --tls-cert/--tls-key` spawned with `--spawn`, using the
 * test CA: echo (full handshakes, then resumed ones), http, ws-echo and ws-hold over wss: (with
 * --insecure), a server the CA does not trust (every connect fails with the TLS code), and the
 * option checks. No timing thresholds: only counts and shapes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parseBenchArgs } from '../../src/cli/bench-options.js';
import type { BenchResult } from '../../src/cli/bench-results.js';
import { UsageError } from '../../src/cli/bench-layout.js';
import { nativeAvailable } from '../helpers/backends.js';
import { HOST, freePort } from '../helpers/net.js';
import { testCerts } from '../helpers/tls-certs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../bin/c1m.js', import.meta.url));
const GUARD = { timeout: 120_000, skip: !nativeAvailable && 'the bench worker needs the native backend' };
const certs = testCerts();
const CA = join(certs.dir, 'ca.crt');
const ROGUE_CA = join(certs.dir, 'rogue-ca.crt');

/** `c1m bench ...args --json --spawn 'c1m serve <app> --tls-cert ... --tls-key ...'`. */
async function bench(app: string, args: string[]): Promise<{ code: number | null; json: BenchResult; stderr: string }> {
  const port = await freePort();
  const serve = `node bin/c1m.js serve ${app} --port ${port} --host ${HOST} --tls-cert ${join(certs.dir, 'server.crt')} --tls-key ${join(certs.dir, 'server.key')}`;
  const child = spawn(process.execPath, [CLI, 'bench', ...args, '--port', String(port), '--json', '--spawn', serve], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const guard = setTimeout(() => child.kill('SIGKILL'), 110_000);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(guard);
  let json = undefined as unknown as BenchResult;
  try {
    json = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as BenchResult;
  } catch {
    assert.fail(`no JSON result; stderr:\n${stderr}`);
  }
  return { code, json, stderr };
}

describe('c1m bench --tls', () => {
  test('echo --tls: full handshakes by default, verified with --tls-ca and --tls-servername', GUARD, async () => {
    const { code, json, stderr } = await bench('echo', ['echo', '-c', '20', '--processes', '2', '-d', '0.5', '--warmup', '0.2', '--verify',
      '--tls', '--tls-ca', CA, '--tls-servername', 'localhost']);
    assert.equal(code, 0, stderr);
    assert.equal(json.connected, 20);
    assert.deepEqual(json.tls, { resume: false, insecure: false, handshakes: 20, resumed: 0 });
    assert.ok(json.msgs > 0);
    assert.equal(json.verify_errors, 0);
  });

  test('echo --tls --tls-resume: later connects resume the session of an earlier one', GUARD, async () => {
    const { code, json, stderr } = await bench('echo', ['echo', '-c', '30', '--processes', '1', '--connect-concurrency', '1', '-d', '0.3', '--warmup', '0',
      '--tls', '--tls-resume', '--tls-ca', CA, '--tls-servername', 'localhost']);
    assert.equal(code, 0, stderr);
    assert.equal(json.tls?.handshakes, 30);
    // the first has no session; the others resume once a session arrived (TLS 1.3: just after a handshake)
    assert.ok(json.tls!.resumed > 0 && json.tls!.resumed < 30, JSON.stringify(json.tls));
  });

  test('http --tls and ws-echo / ws-hold over wss: with --insecure', GUARD, async () => {
    const http = await bench('http', ['http', '-c', '8', '--depth', '2', '-d', '0.3', '--warmup', '0', '--tls', '--insecure']);
    assert.equal(http.code, 0, http.stderr);
    assert.equal(http.json.tls?.handshakes, 8);
    assert.equal(http.json.tls?.insecure, true);
    assert.ok((http.json.http?.status['200'] ?? 0) > 0);
    const echo = await bench('ws-echo', ['ws-echo', '-c', '10', '-d', '0.3', '--warmup', '0', '--verify', '--tls', '--insecure', '--tls-resume', '--connect-concurrency', '1']);
    assert.equal(echo.code, 0, echo.stderr);
    assert.equal(echo.json.ws?.upgraded, 10);
    assert.equal(echo.json.tls?.handshakes, 10);
    assert.ok(echo.json.tls!.resumed > 0);
    assert.equal(echo.json.verify_errors, 0);
    assert.ok(echo.json.msgs > 0);
    const hold = await bench('ws-echo', ['ws-hold', '-c', '10', '-d', '0.2', '--tls', '--tls-ca', CA, '--tls-servername', 'localhost']);
    assert.equal(hold.code, 0, hold.stderr);
    assert.equal(hold.json.ws?.upgraded, 10);
  });

  test('connect: loops of connect + TLS handshake + close; with --tls-resume they resume', GUARD, async () => {
    const full = await bench('echo', ['connect', '-c', '4', '-d', '0.5', '--warmup', '0', '--tls', '--tls-ca', CA, '--tls-servername', 'localhost']);
    assert.equal(full.code, 0, full.stderr);
    assert.ok(full.json.msgs > 0, 'handshakes in the window');
    assert.deepEqual(full.json.connect, { failures: {}, resumed: 0 });
    assert.ok(full.json.latency !== null);
    const resumed = await bench('echo', ['connect', '-c', '4', '-d', '0.5', '--warmup', '0', '--tls', '--tls-resume', '--tls-ca', CA, '--tls-servername', 'localhost']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok(resumed.json.msgs > 0);
    assert.ok(resumed.json.connect!.resumed > 0, JSON.stringify(resumed.json.connect));
    assert.deepEqual(resumed.json.connect!.failures, {});
  });

  test('a certificate the CA does not vouch for: every connect fails with ERR_C1M_TLS', GUARD, async () => {
    const { code, json } = await bench('echo', ['hold', '-c', '5', '-d', '0.1', '--tls', '--tls-ca', ROGUE_CA, '--tls-servername', 'localhost']);
    assert.equal(code, 1);
    assert.equal(json.connected, 0);
    assert.deepEqual(json.errors, { ERR_C1M_TLS: 5 });
    assert.match(json.error_samples?.ERR_C1M_TLS ?? '', /certificate verify failed/, 'OpenSSL\'s reason, once');
    assert.equal(json.tls?.handshakes, 0);
  });

  test('option checks', () => {
    const bad: [string[], RegExp][] = [
      [['echo', '--port', '9', '-c', '1', '--tls-resume'], /--tls-resume needs --tls/],
      [['echo', '--port', '9', '-c', '1', '--insecure'], /--insecure needs --tls/],
      [['echo', '--port', '9', '-c', '1', '--tls-ca', CA], /--tls-ca needs --tls/],
      [['broadcast', '--port', '9', '-c', '1', '--tls'], /--tls applies to the hold, echo, http, ws-hold, ws-echo, connect scenarios only/],
      [['echo', '--port', '9', '-c', '1', '--tls', '--tls-ca', '/nonexistent/ca.pem'], /--tls-ca \/nonexistent\/ca.pem: ENOENT/],
      [['echo', '--port', '9', '-c', '1', '--tls', '--tls-ca', CLI], /no PEM certificate/],
      [['echo', '--port', '9', '-c', '1', '--tls', '--tls-servername', 'a b'], /--tls-servername must be a host name/],
    ];
    for (const [argv, message] of bad) assert.throws(() => parseBenchArgs(argv), (e: Error) => e instanceof UsageError && message.test(e.message), argv.join(' '));
    const o = parseBenchArgs(['ws-echo', '--port', '9', '-c', '1', '--tls', '--tls-ca', CA, '--tls-resume']);
    assert.ok(o !== 'help');
    assert.equal(o.tls?.resume, true);
    assert.equal(o.tls?.insecure, false);
    assert.match(o.tls?.ca ?? '', /BEGIN CERTIFICATE/);
    const plain = parseBenchArgs(['echo', '--port', '9', '-c', '1']);
    assert.ok(plain !== 'help');
    assert.equal(plain.tls, null);
  });
});

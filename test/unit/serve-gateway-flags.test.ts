/**
 * The flags of `c1m serve gateway` for the JetStream history (`--history-stream`,
 * `--history-storage`, `--history-stream-bytes`) and the admin listener (`--admin-port`,
 * `--admin-host`): their translation into handler options, and
 * the clear refusals of bad values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayOptions } from '../../src/cli/serve-gateway.js';

test('the JetStream history flags become handler options', () => {
  const r = gatewayOptions({ 'no-auth': true, nats: 'nats://127.0.0.1:4222', history: '50', 'history-stream': 'MY_HIST', 'history-storage': 'file', 'history-stream-bytes': '1048576' }, 1);
  assert.ok('options' in r);
  assert.equal(r.options.history, 50);
  assert.equal(r.options.historyStream, 'MY_HIST');
  assert.equal(r.options.historyStorage, 'file');
  assert.equal(r.options.historyStreamBytes, 1048576);
  const d = gatewayOptions({ 'no-auth': true }, 1);
  assert.ok('options' in d);
  assert.equal(d.options.historyStream, undefined);
  assert.equal(d.options.historyStorage, undefined);
});

test('--client-publish lets clients publish over their WebSocket; off unless given', () => {
  const r = gatewayOptions({ 'jwt-secret': 'a-secret-of-enough-length', 'client-publish': true }, 1);
  assert.ok('options' in r);
  assert.equal(r.options.clientPublish, true);
  const d = gatewayOptions({ 'jwt-secret': 'a-secret-of-enough-length' }, 1);
  assert.ok('options' in d);
  assert.equal(d.options.clientPublish, undefined);
  const rated = gatewayOptions({ 'no-auth': true, 'client-publish': true, 'client-publish-rate': '0' }, 1);
  assert.ok('options' in rated);
  assert.equal(rated.options.clientPublishRate, 0);
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'client-publish-rate': '5' }, 1), { error: '--client-publish-rate needs --client-publish' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'client-publish': true, 'client-publish-rate': '1.5' }, 1), { error: '--client-publish-rate must be a non-negative integer' });
});

test('bad JetStream history flags are refused with the reason', () => {
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-storage': 'disk' }, 1), { error: '--history-storage is memory or file' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-stream': 'a.b' }, 1), { error: '--history-stream is 1 to 64 of [A-Za-z0-9_-]' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-stream-bytes': '-1' }, 1), { error: '--history-stream-bytes must be a non-negative integer' });
});

test('--admin-port and --admin-host become handler options (host defaults in the gateway)', () => {
  const r = gatewayOptions({ 'no-auth': true, port: '8080', 'admin-port': '9090', 'admin-host': '::1' }, 1);
  assert.ok('options' in r);
  assert.equal(r.options.adminPort, 9090);
  assert.equal(r.options.adminHost, '::1');
  const d = gatewayOptions({ 'no-auth': true, port: '8080' }, 1);
  assert.ok('options' in d);
  assert.equal(d.options.adminPort, undefined);
  assert.equal(d.options.adminHost, undefined);
});

test('bad admin flags are refused with the reason', () => {
  const port = /--admin-port must be a port number from 1 to 65535/;
  for (const p of ['0', '65536', '-1', 'x', '']) {
    const r = gatewayOptions({ 'no-auth': true, port: '0', 'admin-port': p }, 1);
    assert.ok('error' in r && port.test(r.error), `${p}: ${JSON.stringify(r)}`);
  }
  assert.deepEqual(gatewayOptions({ 'no-auth': true, port: '8080', 'admin-port': '8080' }, 1), { error: '--admin-port 8080 is also --port: give the admin listener a port of its own' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, port: '0', 'metrics-port': '9100', 'admin-port': '9100' }, 1), { error: '--admin-port 9100 is also --metrics-port: give the admin listener a port of its own' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'admin-host': '127.0.0.1' }, 1), { error: '--admin-host needs --admin-port' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'admin-port': '9000', 'admin-host': 'example.com' }, 1), { error: '--admin-host must be an IP address, not "example.com"' });
});

test('a --jwt-secret (or C1M_JWT_SECRET) under 16 characters is a usage error naming the flag', () => {
  assert.deepEqual(gatewayOptions({ 'jwt-secret': 'short' }, 1), { error: '--jwt-secret must be at least 16 characters (an HS256 secret shorter than that is guessable)' });
  const saved = process.env.C1M_JWT_SECRET;
  process.env.C1M_JWT_SECRET = 'tiny';
  try {
    assert.match((gatewayOptions({}, 1) as { error: string }).error, /^C1M_JWT_SECRET must be at least 16 characters/);
  } finally {
    if (saved === undefined) delete process.env.C1M_JWT_SECRET;
    else process.env.C1M_JWT_SECRET = saved;
  }
  assert.ok('options' in gatewayOptions({ 'jwt-secret': 'sixteen-chars-ok' }, 1));
});

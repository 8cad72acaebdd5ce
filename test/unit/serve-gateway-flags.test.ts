/**
 * The flags of `c1m serve gateway` for the JetStream history (`--history-stream`,
 * `--history-storage`, `--history-stream-bytes`): their translation into handler options, and
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

test('bad JetStream history flags are refused with the reason', () => {
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-storage': 'disk' }, 1), { error: '--history-storage is memory or file' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-stream': 'a.b' }, 1), { error: '--history-stream is 1 to 64 of [A-Za-z0-9_-]' });
  assert.deepEqual(gatewayOptions({ 'no-auth': true, 'history-stream-bytes': '-1' }, 1), { error: '--history-stream-bytes must be a non-negative integer' });
});

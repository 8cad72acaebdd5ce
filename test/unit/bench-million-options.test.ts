/**
 * `c1m bench million`'s `--client-poll-ms` default: the clients' poll interval once connected
 * depends on `--ws` and on the run's size (bench-million-options.ts); the run itself is checked
 * end to end in test/integration/bench-million*.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMillionArgs, type MillionOptions } from '../../src/cli/bench-million-options.js';

const parse = (argv: string[]): MillionOptions => {
  const o = parseMillionArgs(argv);
  assert.notEqual(o, 'help');
  return o as MillionOptions;
};

test('--ws: 250 ms from a largest step of 100,000, 50 ms below it', () => {
  assert.equal(parse(['--ws']).clientPollMs, 250, 'the default steps reach 1,000,000');
  assert.equal(parse(['--ws', '--steps', '1000,100000']).clientPollMs, 250);
  assert.equal(parse(['--ws', '--steps', '99999']).clientPollMs, 50);
  assert.equal(parse(['--ws', '--steps', '1000,20000']).clientPollMs, 50);
});

test('TCP: wake per event unless asked', () => {
  assert.equal(parse([]).clientPollMs, 0);
  assert.equal(parse(['--steps', '1000000']).clientPollMs, 0);
  assert.equal(parse(['--client-poll-ms', '20']).clientPollMs, 20);
});

test('--server-poll-ms: the server keeps its own default (wake per event) unless asked', () => {
  assert.equal(parse(['--ws']).serverPollMs, undefined);
  assert.equal(parse(['--ws', '--server-poll-ms', '50']).serverPollMs, 50);
  assert.equal(parse(['--server-poll-ms', '0']).serverPollMs, 0);
  assert.throws(() => parseMillionArgs(['--server-poll-ms', '60001']), /--server-poll-ms/);
  assert.throws(() => parseMillionArgs(['--server-poll-ms', 'x']), /--server-poll-ms/);
});

test('--client-connect-poll-ms: connect phases wake per event unless asked', () => {
  assert.equal(parse(['--ws']).clientConnectPollMs, 0);
  assert.equal(parse(['--ws', '--client-connect-poll-ms', '50']).clientConnectPollMs, 50);
  assert.throws(() => parseMillionArgs(['--client-connect-poll-ms', '1001']), /--client-connect-poll-ms/);
  assert.throws(() => parseMillionArgs(['--client-connect-poll-ms', 'x']), /--client-connect-poll-ms/);
});

test('an explicit --client-poll-ms wins at any size', () => {
  assert.equal(parse(['--ws', '--client-poll-ms', '0']).clientPollMs, 0);
  assert.equal(parse(['--ws', '--steps', '1000', '--client-poll-ms', '400']).clientPollMs, 400);
});

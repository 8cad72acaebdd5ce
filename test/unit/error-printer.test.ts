// The default onError: at most one stderr line per error code per interval, the rest counted;
// and errors made for what a peer did carry no JS stack.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { C1mError, systemError, withoutStack } from '../../src/core/errors.js';
import { errorPrinter } from '../../src/core/options.js';

test('errorPrinter: one line per code per interval; the held-back count goes out with the next line of that code', () => {
  let t = 1_000;
  const lines: string[] = [];
  const print = errorPrinter(1000, () => t, (l) => lines.push(l));
  for (let i = 0; i < 500; i++) print(new C1mError('ERR_C1M_TLS_HANDSHAKE', `handshake ${i}`));
  print(systemError(-104, 'read')); // another code: its own line at once
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^c1m: C1mError: handshake 0\n/);
  assert.match(lines[1]!, /^c1m: Error: read ECONNRESET/);
  t += 999;
  print(new C1mError('ERR_C1M_TLS_HANDSHAKE', 'still inside the interval'));
  assert.equal(lines.length, 2);
  t += 1;
  print(new C1mError('ERR_C1M_TLS_HANDSHAKE', 'next'));
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /C1mError: next[^]*\[500 more ERR_C1M_TLS_HANDSHAKE not shown since the last one\]\n$/);
  t += 5_000;
  print(new C1mError('ERR_C1M_TLS_HANDSHAKE', 'alone'));
  assert.doesNotMatch(lines[3]!, /more/, 'nothing held back: no count');
  print(new Error('no code')); // keyed by name
  assert.equal(lines.length, 5);
});

test('withoutStack: the error has its message and fields, no frames, and the limit is restored', () => {
  const before = Error.stackTraceLimit;
  const e = withoutStack(() => systemError(-104, 'read'));
  assert.equal(e.code, 'ECONNRESET');
  assert.equal(e.stack, 'Error: read ECONNRESET');
  assert.equal(Error.stackTraceLimit, before);
  assert.throws(() => withoutStack(() => { throw new Error('inside'); }), /inside/);
  assert.equal(Error.stackTraceLimit, before, 'restored after a throw too');
  assert.match(new Error('normal').stack!, /\n {4}at /, 'other errors keep their stacks');
});

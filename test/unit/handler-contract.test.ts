/**
 * The handler contract without sockets: onData results to actions, thrown values to Errors,
 * descriptions that cannot throw and stay short, and reporting that survives a throwing onError.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { C1mError } from '../../src/core/errors.js';
import {
  HANDLER_ERROR,
  HANDLER_RESULT_ERROR,
  INVALID_RESULT,
  MAX_DESCRIPTION,
  callbackFailed,
  connectionFailed,
  dataAction,
  deliverReactor,
  describeValue,
  handlerError,
  report,
  resultError,
  resultFailed,
} from '../../src/core/handler-contract.js';
import { Action, type Connection, type Reactor } from '../../src/core/types.js';

const TEN_MB = 10 * 1024 * 1024;

/** An object whose `message` and `toString` throw when read or called. */
function throwingGetters(): object {
  return {
    get message(): string {
      throw new Error('message getter');
    },
    toString(): string {
      throw new Error('toString');
    },
  };
}

/** A Proxy whose every trap throws (so `instanceof`, `String()` and key listing all throw). */
function hostileProxy(): object {
  const fail = (): never => {
    throw new Error('trap');
  };
  return new Proxy({}, { get: fail, getPrototypeOf: fail, ownKeys: fail, has: fail, getOwnPropertyDescriptor: fail });
}

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** Values a handler may throw or return that plain `String(x)` or `${x}` cannot handle. */
const hostile: [name: string, make: () => unknown][] = [
  ['a null-prototype object', () => Object.create(null)],
  ['an object with throwing message/toString', throwingGetters],
  ['an object with a throwing Symbol.toStringTag getter', () => Object.defineProperty({}, Symbol.toStringTag, { get: () => { throw new Error('tag'); } })],
  ['a Proxy whose traps throw', hostileProxy],
  ['a revoked Proxy', revokedProxy],
  ['a Symbol', () => Symbol('bad')],
  ['a Symbol with a 10 MB description', () => Symbol('d'.repeat(TEN_MB))],
  ['a 10 MB string', () => 'x'.repeat(TEN_MB)],
  ['undefined', () => undefined],
  ['null', () => null],
  ['a bigint', () => 5n],
  ['a function', () => function named() {}],
];

test('dataAction: counts, Actions, and everything else invalid', () => {
  assert.equal(dataAction(undefined, 10), 10, 'undefined consumes everything');
  assert.equal(dataAction(0, 10), 0);
  assert.equal(dataAction(7, 10), 7);
  assert.equal(dataAction(10, 10), 10);
  assert.equal(dataAction(Action.Close, 10), Action.Close);
  assert.equal(dataAction(Action.Shutdown, 10), Action.Shutdown);
  const invalid: unknown[] = [11, -3, -5, NaN, Infinity, -Infinity, 1.5, '3', Symbol('3'), 3n, true, false, null, {}, Object.create(null), [], hostileProxy(), revokedProxy()];
  for (const r of invalid) assert.equal(dataAction(r, 10), INVALID_RESULT, describeValue(r));
  assert.equal(dataAction(1, 0), INVALID_RESULT, 'nothing to consume: 1 is out of range');
});

test('describeValue never throws, stays short, and names what it saw', () => {
  for (const [name, make] of hostile) {
    const text = describeValue(make());
    assert.equal(typeof text, 'string', name);
    assert.ok(text.length > 0 && text.length <= MAX_DESCRIPTION, `${name}: ${text.length} chars`);
  }
  assert.equal(describeValue(Object.create(null)), '[Object: null prototype] {}');
  assert.equal(describeValue(Symbol('bad')), 'Symbol(bad)');
  assert.equal(describeValue(5n), '5n');
  assert.equal(describeValue(NaN), 'NaN');
  assert.equal(describeValue(-5), '-5');
  assert.equal(describeValue(true), 'true');
  assert.equal(describeValue(undefined), 'undefined');
  assert.equal(describeValue(null), 'null');
  assert.equal(describeValue('abc'), "'abc'");
  assert.match(describeValue('x'.repeat(TEN_MB)), /^'x+'\.\.\. \d+ more characters$/);
  assert.match(describeValue(throwingGetters()), /message: \[Getter\]/, 'getters are shown, not run');
  assert.equal(describeValue(Object.defineProperty({}, Symbol.toStringTag, { get: () => { throw new Error('tag'); } })), '[object]');
});

test('handlerError: Errors pass through unchanged, from any realm; other values are wrapped', () => {
  const err = new TypeError('mine');
  assert.equal(handlerError(err, 'onData'), err);
  const foreign = runInNewContext('new RangeError("other realm")') as Error;
  assert.equal(handlerError(foreign, 'onOpen'), foreign);
  for (const [name, make] of hostile) {
    const value = make();
    const wrapped = handlerError(value, 'onDrain');
    assert.ok(wrapped instanceof C1mError, name);
    assert.equal((wrapped as C1mError).code, HANDLER_ERROR, name);
    assert.equal(wrapped.cause, value, `${name}: the thrown value is kept as cause`);
    assert.ok(wrapped.message.startsWith('onDrain threw a non-Error value: '), `${name}: ${wrapped.message.slice(0, 80)}`);
    assert.ok(wrapped.message.length <= 'onDrain threw a non-Error value: '.length + MAX_DESCRIPTION, name);
  }
  assert.equal(handlerError(Object.create(null), 'onData').message, 'onData threw a non-Error value: [Object: null prototype] {}');
  assert.equal(handlerError(undefined, 'onTimeout').message, 'onTimeout threw a non-Error value: undefined');
});

test('resultError: ERR_C1M_HANDLER_RESULT naming the value and the range', () => {
  const e = resultError(Object.create(null), 12);
  assert.ok(e instanceof C1mError);
  assert.equal(e.code, HANDLER_RESULT_ERROR);
  assert.equal(e.message, 'onData returned [Object: null prototype] {}; expected a byte count from 0 to 12, an Action, or undefined');
  for (const [name, make] of hostile) assert.equal(resultError(make(), 3).code, HANDLER_RESULT_ERROR, name);
});

test('connectionFailed and resultFailed report once with the connection and return the close reason', () => {
  const seen: [Error, Connection | undefined][] = [];
  const sink = (err: Error, conn?: Connection): void => void seen.push([err, conn]);
  const conn = { id: 42 } as Connection;
  const boom = new Error('boom');
  const r1 = connectionFailed(sink, boom, 'onEnd', conn);
  assert.deepEqual(r1, { kind: 'handler-error', code: HANDLER_ERROR, error: boom });
  const r2 = resultFailed(sink, -5, 4, conn);
  assert.equal(r2.kind, 'handler-error');
  assert.equal(r2.code, HANDLER_ERROR, 'the close reason code stays ERR_C1M_HANDLER');
  assert.equal((r2.error as C1mError).code, HANDLER_RESULT_ERROR);
  const r3 = connectionFailed(sink, Symbol('s'), 'onOpen', conn);
  assert.equal(r3.error.message, 'onOpen threw a non-Error value: Symbol(s)');
  assert.deepEqual(seen.map(([e, c]) => [e, c?.id]), [[boom, 42], [r2.error, 42], [r3.error, 42]]);
});

test('callbackFailed reports onClose with its handle, onShutdown without one', () => {
  const seen: [Error, Connection | undefined][] = [];
  const sink = (err: Error, conn?: Connection): void => void seen.push([err, conn]);
  const conn = { id: 7 } as Connection;
  callbackFailed(sink, null, 'onClose', conn);
  callbackFailed(sink, throwingGetters(), 'onShutdown');
  assert.equal(seen.length, 2);
  assert.equal(seen[0]![0].message, 'onClose threw a non-Error value: null');
  assert.equal(seen[0]![1], conn);
  assert.match(seen[1]![0].message, /^onShutdown threw a non-Error value: \{ message: \[Getter\]/);
  assert.equal(seen[1]![1], undefined);
});

/** Run `fn` with process.stderr.write captured. */
function captureStderr(fn: () => void): string {
  const write = process.stderr.write;
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    out += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

test('report: an onError that throws anything goes to stderr (bounded), never to the caller', () => {
  for (const [name, make] of [...hostile, ['an Error with a 10 MB message', () => new Error('m'.repeat(TEN_MB))] as const]) {
    const out = captureStderr(() => {
      report(() => {
        throw make();
      }, new Error('the original'));
    });
    assert.match(out, /^c1m: onError threw /, name);
    assert.match(out, /c1m: while reporting Error: the original/, name);
    assert.ok(out.length < 20_000, `${name}: ${out.length} chars on stderr`);
  }
  const calls: unknown[] = [];
  const out = captureStderr(() => report((err, conn) => void calls.push(err.message, conn), new Error('fine')));
  assert.equal(out, '', 'a working onError writes nothing to stderr');
  assert.deepEqual(calls, ['fine', undefined]);
});

test('report: survives a stderr that throws too', () => {
  const write = process.stderr.write;
  process.stderr.write = (() => {
    throw new Error('stderr gone');
  }) as typeof process.stderr.write;
  try {
    report(() => {
      throw Object.create(null);
    }, new Error('x'));
  } finally {
    process.stderr.write = write;
  }
});

test('deliverReactor: gives the reactor once; a throw goes to onError', () => {
  const reactor = { backend: 'portable' } as Reactor;
  const got: Reactor[] = [];
  const errors: Error[] = [];
  deliverReactor({ onReactor: (r) => void got.push(r) }, reactor, (e) => void errors.push(e));
  assert.deepEqual(got, [reactor]);
  deliverReactor({}, reactor, (e) => void errors.push(e));
  deliverReactor({ onReactor: () => { throw Object.create(null); } }, reactor, (e) => void errors.push(e));
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as C1mError).code, HANDLER_ERROR);
  assert.equal(errors[0]!.message, 'onReactor threw a non-Error value: [Object: null prototype] {}');
});

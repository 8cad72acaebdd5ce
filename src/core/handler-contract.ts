/**
 * The handler contract: what the engine does with what a handler returns or throws. Both
 * backends (native epoll, portable node:net) call this module, so the two cannot drift.
 *
 * Model: a handler callback either returns normally or fails. For `onData` the return value is
 * an action (`dataAction`): a consumed byte count, `Action.Close`, `Action.Shutdown`, or
 * invalid. A failure (a throw, or an invalid `onData` result) is normalised to an `Error`,
 * reported to `onError`, and, when the callback belongs to a live connection, that connection
 * alone is reset with reason `'handler-error'`:
 *
 * | callback | failure does |
 * |---|---|
 * | `onOpen`, `onData`, `onDrain`, `onEnd`, `onTimeout` | `onError(err, conn)`, then reset `conn` (`'handler-error'`) |
 * | `onClose` | `onError(err, conn)` (the connection is already gone) |
 * | `onShutdown` | `onError(err)`; the shutdown goes on (what remains is reset at its deadline) |
 * | `onReactor` | `onError(err)`; `createReactor` returns the reactor as usual |
 *
 * Invariants:
 * - Nothing exported here throws, whatever the handler threw or returned and whatever
 *   `onError` does: a `Proxy` with throwing traps, an object without a prototype, getters that
 *   throw, Symbols, 10 MB strings. The reactor's batch loop relies on it.
 * - A thrown `Error` (from any realm) reaches `onError` and `reason.error` unchanged. Any other
 *   thrown value is wrapped in a `C1mError` `ERR_C1M_HANDLER` whose `cause` is the value; an
 *   invalid `onData` result becomes `ERR_C1M_HANDLER_RESULT`. The close reason's code is
 *   `ERR_C1M_HANDLER` in both cases.
 * - Descriptions of foreign values are at most `MAX_DESCRIPTION` characters, and are made
 *   without calling the value's `toString`, `message` getter or custom inspector.
 *
 * Hot path: none here. A backend checks the common `onData` results (undefined, or an integer
 * from 0 to the length) inline and calls `dataAction` only for the rest.
 */
import { inspect, types } from 'node:util';
import { C1mError } from './errors.js';
import { Action, type CloseReason, type Connection, type Handler, type Reactor } from './types.js';

/** Close reason code of a connection reset because one of its callbacks failed. */
export const HANDLER_ERROR = 'ERR_C1M_HANDLER';
/** Error code of an `onData` result that is neither a byte count in range, an Action nor undefined. */
export const HANDLER_RESULT_ERROR = 'ERR_C1M_HANDLER_RESULT';
/** `dataAction`'s answer for an invalid `onData` result (Action.Close is -1, Action.Shutdown -2). */
export const INVALID_RESULT = -3;
/** Longest description of a foreign value in an error message, in characters. */
export const MAX_DESCRIPTION = 200;
/** Longest error text written to stderr when `onError` itself throws, in characters. */
const MAX_STDERR_TEXT = 4000;

/** The handler callbacks whose failures this module handles. */
export type HandlerCallback = 'onOpen' | 'onData' | 'onDrain' | 'onEnd' | 'onTimeout' | 'onClose' | 'onShutdown' | 'onReactor' | 'onMessage' | 'onError';

/** `EngineOptions.onError` once resolved. */
export type ErrorSink = (err: Error, conn?: Connection) => void;

/** A close reason for a failed callback; `error` is what `onError` was given. */
export type HandlerErrorReason = CloseReason & { kind: 'handler-error'; code: typeof HANDLER_ERROR; error: Error };

const INSPECT_OPTIONS = {
  depth: 1,
  breakLength: Infinity,
  maxArrayLength: 10,
  maxStringLength: 100,
  customInspect: false,
  getters: false,
} as const;

/**
 * What `onData`'s `result` asks for, given `length` bytes presented: the consumed byte count
 * (undefined means all, `length`), `Action.Close`, `Action.Shutdown`, or `INVALID_RESULT`
 * (anything else: a count out of range, NaN, a fraction, a string, a bigint, ...). Never throws.
 */
export function dataAction(result: unknown, length: number): number {
  if (result === undefined) return length;
  if (typeof result === 'number') {
    if (Number.isInteger(result) && result >= 0 && result <= length) return result;
    if (result === Action.Close || result === Action.Shutdown) return result;
  }
  return INVALID_RESULT;
}

/**
 * A short, readable description of any value for an error message (`'abc'`, `Symbol(x)`,
 * `5n`, `[Object: null prototype] {}`), at most `MAX_DESCRIPTION` characters. Runs none of the
 * value's `toString`, getters or custom inspector; at worst a `Symbol.toStringTag` or
 * constructor `name` getter (a throw there is caught). Never throws.
 */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = inspect(value, INSPECT_OPTIONS);
  } catch {
    text = value === null ? 'null' : `[${typeof value}]`;
  }
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 1)}…` : text;
}

/** True for an Error of any realm; false (not a throw) for a Proxy whose traps throw. */
function isError(value: unknown): value is Error {
  try {
    return value instanceof Error || types.isNativeError(value);
  } catch {
    return false;
  }
}

/**
 * What `callback` threw, as an Error: an Error as is; any other value wrapped in a `C1mError`
 * `ERR_C1M_HANDLER` ("onData threw a non-Error value: ...") with the value as `cause`.
 * Never throws.
 */
export function handlerError(thrown: unknown, callback: HandlerCallback): Error {
  if (isError(thrown)) return thrown;
  return new C1mError(HANDLER_ERROR, `${callback} threw a non-Error value: ${describeValue(thrown)}`, { cause: thrown });
}

/** The `ERR_C1M_HANDLER_RESULT` error for an invalid `onData` result. Never throws. */
export function resultError(result: unknown, length: number): C1mError {
  return new C1mError(
    HANDLER_RESULT_ERROR,
    `onData returned ${describeValue(result)}; expected a byte count from 0 to ${length}, an Action, or undefined`,
  );
}

/** The close reason of a connection reset because a callback failed with `error`. */
export function handlerErrorReason(error: Error): HandlerErrorReason {
  return { kind: 'handler-error', code: HANDLER_ERROR, error };
}

/** An error's stack (or a description), bounded, for stderr. Never throws. */
function errorText(value: unknown): string {
  let text: string | undefined;
  if (isError(value)) {
    try {
      const stack: unknown = value.stack;
      if (typeof stack === 'string') text = stack;
    } catch {
      // a throwing stack getter: describe the object instead
    }
  }
  text ??= describeValue(value);
  return text.length > MAX_STDERR_TEXT ? `${text.slice(0, MAX_STDERR_TEXT - 1)}…` : text;
}

/**
 * Give `err` to `onError`. If `onError` throws, both errors go to stderr (bounded) and nothing
 * escapes: a broken `onError` must not stop the reactor. Never throws.
 */
export function report(onError: ErrorSink, err: Error, conn?: Connection): void {
  try {
    onError(err, conn);
  } catch (inner) {
    try {
      process.stderr.write(`c1m: onError threw ${errorText(inner)}\nc1m: while reporting ${errorText(err)}\n`);
    } catch {
      // stderr is gone too: nowhere left to report
    }
  }
}

/**
 * A callback of the live connection `conn` threw `thrown`: report it (`onError(err, conn)`) and
 * return the reason the backend must reset `conn` with. Never throws.
 */
export function connectionFailed(onError: ErrorSink, thrown: unknown, callback: HandlerCallback, conn: Connection): HandlerErrorReason {
  const error = handlerError(thrown, callback);
  report(onError, error, conn);
  return handlerErrorReason(error);
}

/**
 * `onData` of `conn` returned `result`, which `dataAction` found invalid for `length` bytes:
 * report an `ERR_C1M_HANDLER_RESULT` error and return the reason to reset `conn` with.
 * Never throws.
 */
export function resultFailed(onError: ErrorSink, result: unknown, length: number, conn: Connection): HandlerErrorReason {
  const error = resultError(result, length);
  report(onError, error, conn);
  return handlerErrorReason(error);
}

/**
 * A callback with no connection left to close threw (`onClose`: pass its now stale handle;
 * `onShutdown`, `onReactor`: no connection): report it. Never throws.
 */
export function callbackFailed(onError: ErrorSink, thrown: unknown, callback: HandlerCallback, conn?: Connection): void {
  report(onError, handlerError(thrown, callback), conn);
}

/**
 * Give `handler` its reactor (`onReactor`), once, before any other callback. A throw is
 * reported (`onError(err)`) and the reactor is used as usual. Never throws.
 */
export function deliverReactor(handler: Handler, reactor: Reactor, onError: ErrorSink): void {
  try {
    handler.onReactor?.(reactor);
  } catch (err) {
    callbackFailed(onError, err, 'onReactor');
  }
}

/**
 * A UDP socket's handler threw (`thrown`), or the socket met an error: the handler's own
 * `onError(sock, err)` is told if it has one, else the reactor's `onError` (`reportTo`); a throw
 * from the handler's `onError` goes to the reactor's. Both UDP backends call this. Never throws
 * (given a `reportTo` that does not: pass `(e) => report(onError, e)`).
 */
export function socketFailed<S>(reportTo: (err: Error) => void, handler: { onError?(sock: S, err: Error): void }, sock: S, thrown: unknown): void {
  const err = handlerError(thrown, 'onMessage');
  let onError: ((sock: S, err: Error) => void) | undefined;
  try {
    onError = handler.onError;
  } catch (e) {
    reportTo(handlerError(e, 'onError'));
  }
  if (!onError) {
    reportTo(err);
    return;
  }
  try {
    onError.call(handler, sock, err);
  } catch (e) {
    reportTo(handlerError(e, 'onError'));
  }
}

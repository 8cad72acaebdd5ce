/**
 * The one error hierarchy. Every code is listed in docs/errors.md and never reused.
 */

/** An error raised by c1m itself (misuse, setup failure, protocol limit). */
export class C1mError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'C1mError';
    this.code = code;
  }
}

/**
 * Make an error without capturing a JS stack. For what the network did (a peer's reset, a
 * handshake that failed): the stack would only show the reactor's dispatch loop, and capturing
 * and formatting it cost more than the event itself (~13 % of a TLS server's CPU under a
 * client that aborts its handshakes). `error.stack` is then just the name and message.
 */
export function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A failed system call, shaped like Node's own (`code`, `errno`, `syscall`). */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

import { constants } from 'node:os';
import { loadBinding } from './binding.js';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) errnoNames.set(value, name);

/** The symbolic name of a positive or negative errno (`ECONNRESET`), or `E<n>` if unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? loadBinding()?.errname(errno) ?? `E${Math.abs(errno)}`;
}

/** Build a Node-style system error from a negative errno. */
export function systemError(errno: number, syscall: string, extra?: { address?: string; port?: number }): SystemError {
  const code = errnoName(errno);
  const where = extra?.address !== undefined ? ` ${extra.address}${extra.port !== undefined ? `:${extra.port}` : ''}` : '';
  const err = new Error(`${syscall} ${code}${where}`) as SystemError;
  err.code = code;
  err.errno = -Math.abs(errno);
  err.syscall = syscall;
  if (extra?.address !== undefined) err.address = extra.address;
  if (extra?.port !== undefined) err.port = extra.port;
  return err;
}

/** Throw `ERR_C1M_INVALID_OPTION` unless `ok`. */
export function checkOption(ok: boolean, name: string, expected: string, value: unknown): void {
  if (!ok) {
    throw new C1mError('ERR_C1M_INVALID_OPTION', `option "${name}" must be ${expected}, got ${JSON.stringify(value)}`);
  }
}

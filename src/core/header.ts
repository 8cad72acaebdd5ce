/** The small header of `Connection.writeWithHeader`, shared by the backends. Internal. */
import { C1mError } from './errors.js';

/** Throw `ERR_C1M_INVALID_ARGUMENT` unless `headerBytes` is 1 to 4 (`writeWithHeader`). */
export function checkHeaderBytes(headerBytes: number): void {
  if (headerBytes !== 1 && headerBytes !== 2 && headerBytes !== 3 && headerBytes !== 4) {
    throw new C1mError('ERR_C1M_INVALID_ARGUMENT', `headerBytes must be 1, 2, 3 or 4, got ${String(headerBytes)}`);
  }
}

/** The low `headerBytes` bytes of `header`, most significant first, into `to` at `at`. */
export function putHeader(to: Uint8Array, at: number, header: number, headerBytes: number): void {
  for (let i = at + headerBytes - 1; i >= at; i--, header >>>= 8) to[i] = header & 0xff;
}

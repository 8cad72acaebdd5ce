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
  // Unrolled: a loop costs an interrupt check per byte in V8's optimized code.
  const last = at + headerBytes - 1;
  to[last] = header & 0xff;
  if (headerBytes > 1) to[last - 1] = (header >>> 8) & 0xff;
  if (headerBytes > 2) to[last - 2] = (header >>> 16) & 0xff;
  if (headerBytes > 3) to[last - 3] = header >>> 24;
}

/**
 * Backend selection: one entry point that gives a Reactor on the native backend when the addon
 * loads (Linux), else on the portable node:net backend.
 */
import { loadBinding, nativeUnavailableReason, warnPortableFallback } from './binding.js';
import { C1mError } from './errors.js';
import { deliverReactor } from './handler-contract.js';
import { resolveOptions } from './options.js';
import type { EngineOptions, Handler, Reactor } from './types.js';
import { createNativeReactor } from '../backends/native.js';
import { createPortableReactor } from '../backends/portable.js';

/** Which backend `backend: 'auto'` picks on this machine. */
export function defaultBackend(): 'native' | 'portable' {
  return loadBinding() ? 'native' : 'portable';
}

/**
 * Create a reactor: one event loop with its connections, for servers and clients alike.
 *
 * Threading: the reactor and its handler run on the calling thread.
 * Errors: `ERR_C1M_INVALID_OPTION` for bad options; `ERR_C1M_NATIVE_UNAVAILABLE` when
 * `backend: 'native'` is asked for and the addon cannot load.
 */
export function createReactor(handler: Handler, options: EngineOptions = {}): Reactor {
  if (handler === null || typeof handler !== 'object') {
    throw new C1mError('ERR_C1M_INVALID_OPTION', 'handler must be an object with onOpen/onData/... methods');
  }
  const opts = resolveOptions(options);
  const binding = opts.backend === 'portable' ? null : loadBinding();
  let reactor: Reactor;
  if (binding) {
    reactor = createNativeReactor(binding, handler, opts);
  } else {
    if (opts.backend === 'native') {
      throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', `backend 'native' is unavailable: ${nativeUnavailableReason()}`);
    }
    if (opts.backend === 'auto') warnPortableFallback();
    reactor = createPortableReactor(handler, opts);
  }
  deliverReactor(handler, reactor, opts.onError);
  return reactor;
}
